"""The public API as tools that do not run code see it: the lazy __init__s declare every name for type checkers."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import landform

LAZY = ["landform", "landform.metrics"]


def _type_checking_imports(module: str) -> dict[str, str]:
    """{name: module it is imported from} of the ``if TYPE_CHECKING:`` block of ``module``'s __init__.py."""
    path = Path(importlib.import_module(module).__file__)
    tree = ast.parse(path.read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.level == 1
                for alias in imp.names:
                    found[alias.asname or alias.name] = imp.module
    return found


@pytest.mark.parametrize("module", LAZY)
def test_lazy_exports_are_declared_for_type_checkers(module):
    mod = importlib.import_module(module)
    exports = mod._EXPORTS
    assert _type_checking_imports(module) == exports
    assert [n for n in mod.__all__ if n != "__version__"] == list(exports)
    for name in exports:  # and each resolves at run time to what the declaration names
        value = getattr(mod, name)
        assert value is getattr(importlib.import_module(f"{module}.{exports[name]}"), name)


def test_old_module_paths_still_import():
    from landform.landscape import Landscape
    from landform.results import SavedDensity, SavedDirections, load_run
    from landform.store import GridStore, atomic_write_json, load_landscape

    assert Landscape is landform.Landscape and load_landscape is landform.load_landscape
    assert load_run is landform.load_run and callable(atomic_write_json)
    assert {SavedDensity.__module__, SavedDirections.__module__, GridStore.__module__} == {
        "landform.results.density", "landform.results.directions", "landform.store"
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------- renamed arguments
def _tiny():
    import torch
    from torch import nn

    from landform import Objective

    torch.manual_seed(0)
    x, y = torch.randn(12, 3), torch.randint(0, 2, (12,))
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    return net, (x, y), Objective(net, (x, y), nn.functional.cross_entropy)


def _old_and_new(call_old, call_new):
    with pytest.warns(DeprecationWarning, match="is now called"):
        old = call_old()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the new name does not warn
        new = call_new()
    return old, new


def test_old_argument_names_warn_and_give_identical_results():
    import numpy as np
    import torch
    from torch import nn

    from landform import Objective, hessian_directions, pca_directions, random_directions
    from landform.metrics import sharpness

    net, data, obj = _tiny()
    old, new = _old_and_new(lambda: random_directions(obj, n=2, seed=3), lambda: random_directions(obj, dims=2, seed=3))
    assert torch.equal(old.vectors, new.vectors)
    old, new = _old_and_new(lambda: hessian_directions(obj, n=1, seed=0), lambda: hessian_directions(obj, dims=1, seed=0))
    assert torch.equal(old.vectors, new.vectors) and np.array_equal(old.eigenvalues, new.eigenvalues)
    cks = [{k: v + 0.1 * s * torch.ones_like(v) * (1 + i) for i, (k, v) in enumerate(net.state_dict().items())}
           for s in (3, 1)]  # fmt: skip
    old, new = _old_and_new(lambda: pca_directions(obj, cks, n=1), lambda: pca_directions(obj, cks, dims=1))
    assert torch.equal(old.vectors, new.vectors)
    old, new = _old_and_new(
        lambda: sharpness(obj, rho=0.1, kind="worst", steps=3, seed=1),
        lambda: sharpness(obj, rho=0.1, kind="worst", n_steps=3, seed=1),
    )
    assert old.value == new.value
    old, new = _old_and_new(
        lambda: Objective(net, data, nn.functional.cross_entropy, batch_mode="vmap", points_per_chunk=2),
        lambda: Objective(net, data, nn.functional.cross_entropy, batch_mode="vmap", point_batch_size=2),
    )
    assert old.point_batch_size == new.point_batch_size == 2
    thetas = obj.theta0[None] + 0.1 * torch.randn(5, obj.num_params, generator=torch.Generator().manual_seed(0))
    assert torch.equal(old.loss_batch(thetas), new.loss_batch(thetas))
    with pytest.warns(DeprecationWarning):
        assert old.points_per_chunk == 2


def test_old_and_new_name_together_are_refused():
    from landform import InputError, random_directions

    _, _, obj = _tiny()
    with pytest.raises(InputError, match="n: given together with dims"):
        random_directions(obj, n=2, dims=2)


def test_pairs_from_tree_is_persistence_of_the_tree():
    import numpy as np

    from landform import InputError
    from landform.topology import merge_tree, pairs_from_tree, persistence

    v = np.random.default_rng(0).random((9, 8))
    tree = merge_tree(v)
    np.testing.assert_array_equal(pairs_from_tree(tree), persistence(v))
    np.testing.assert_array_equal(pairs_from_tree(tree), persistence(tree))
    with pytest.raises(InputError, match="tree: expected a MergeTree"):
        pairs_from_tree(v)

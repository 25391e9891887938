"""The chain every landscape analysis follows: direction kind -> directions -> grid -> merge tree -> SMAD.

Package-internal. :func:`landform.run.analyze` (the main job), :func:`landform.metrics.robust_smad` (one chain
per seed) and :func:`landform.sampling.dimension_sweep` (one chain per subspace dimension) all build their
directions with :func:`directions_of_kind` and read their grids' topology with :func:`grid_topology`, so the
three give the same numbers for the same request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .directions import Directions
    from .objective import Objective
    from .topology import MergeTree

__all__ = ["DIRECTION_KINDS", "directions_of_kind", "GridTopology", "grid_topology"]

#: The direction kinds a run can ask for by name (a run also takes a file of directions).
DIRECTION_KINDS = ("hessian", "random", "filter")


def directions_of_kind(
    objective: Objective,
    kind: str,
    n: int,
    *,
    seed: int = 0,
    normalization: str | None = None,
    tol: float = 1e-5,
) -> Directions:
    """``n`` directions of ``kind``: ``"hessian"`` (top eigenvectors by Lanczos with tolerance ``tol``, its start
    vector seeded), ``"random"`` (seeded Gaussian, orthonormalised) or ``"filter"`` (random, filter-normalised);
    ``normalization`` rescales hessian and random directions per tensor (``"layer"``/``"numel"``)."""
    if kind == "hessian":
        from .hessian import hessian_directions

        return hessian_directions(objective, n, seed=seed, tol=tol, normalization=normalization)
    if kind in ("random", "filter"):
        from .directions import random_directions

        return random_directions(objective, n, seed=seed, normalization="filter" if kind == "filter" else normalization)
    from .errors import InputError

    raise InputError(f"directions: expected one of {', '.join(DIRECTION_KINDS)}, got {kind!r}.")


@dataclass(frozen=True, eq=False)
class GridTopology:
    """The merge tree of a grid landscape (axis graph) and its persistence pairs, with the run's summary numbers."""

    tree: MergeTree
    pairs: np.ndarray

    @property
    def smad(self) -> float:
        from .topology import smad

        return smad(self.tree)

    @property
    def persistence_range(self) -> float:
        from .topology import persistence_range

        return persistence_range(self.pairs)

    def summary(self) -> dict[str, Any]:
        """The ``topology`` section of a run summary."""
        return {
            "smad": self.smad,
            "n_minima": self.tree.n_minima,
            "n_saddles": int(self.tree.saddles.size),
            "persistence_range": self.persistence_range,
            "value_range": self.tree.value_range,
            "graph": self.tree.graph,
        }


def grid_topology(values: np.ndarray) -> GridTopology:
    """Merge tree and persistence pairs of finite grid ``values`` (the grid's axis graph).

    Examples
    --------
    >>> t = grid_topology(np.array([[0.0, 2.0, 1.0]]))
    >>> t.tree.n_minima, t.pairs.tolist(), round(t.smad, 6)
    (2, [[0.0, inf], [1.0, 2.0]], 0.416667)
    """
    from .topology import merge_tree, pairs_from_tree

    tree = merge_tree(values)
    return GridTopology(tree, pairs_from_tree(tree))

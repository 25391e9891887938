"""Bad input found by a skeptical review of issues 12, 15 and 16: each was a raw Python/torch traceback, a silent
NaN, or a bad span refused only after the expensive directions stage. Each must now be a LandformError that
names the argument, raised before any model work."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import make_mlp
from torch import nn

from landform import (
    InputError,
    NonFiniteError,
    Objective,
    linear_path,
    pca_directions,
    plane_directions,
    project_trajectory,
    random_directions,
)
from landform.cli import main
from landform.estimate import estimate_run


@pytest.fixture
def problem():
    model = make_mlp()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 4, generator=g), torch.randint(0, 3, (12,), generator=g)
    obj = Objective(model, (x, y), nn.functional.cross_entropy)
    states = []
    for i in range(3):
        m = copy.deepcopy(model)
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.1 * (i + 1) * torch.randn(p.shape, generator=g))
        states.append(m.state_dict())
    return model, obj, states


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(dims=0, resolution=5), r"dims: expected an integer in \[1, 43\], got 0"),
        (dict(dims=99, resolution=5), r"dims: expected an integer in \[1, 43\], got 99"),  # P = 43 parameters
        (dict(dims=2, resolution="a"), "resolution"),
        (dict(dims=2, resolution=2.5), "resolution"),
        (dict(dims=2, resolution=[5, None]), "resolution"),
    ],
)
def test_estimate_run_refuses_bad_dims_and_resolution(problem, kwargs, match):
    _, obj, _ = problem
    with pytest.raises(InputError, match=match):
        estimate_run(obj, repeats=1, report=False, **kwargs)


def test_estimate_run_and_trajectory_functions_refuse_a_model_for_the_objective(problem):
    model, obj, states = problem
    d = random_directions(obj, 2, seed=0)
    calls = [
        lambda: estimate_run(model, dims=2, resolution=5),
        lambda: pca_directions(model, states, n=1),
        lambda: project_trajectory(model, d, states),
        lambda: plane_directions(model, states[0], states[1]),
        lambda: linear_path(model, states[0], states[1]),
    ]
    for call in calls:
        with pytest.raises(InputError, match="objective: expected a landform.Objective"):
            call()


def test_project_trajectory_refuses_a_nan_checkpoint_naming_it(problem):
    _, obj, states = problem
    d = random_directions(obj, 2, seed=0)
    bad = copy.deepcopy(states[1])
    bad["0.weight"][0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="checkpoint 1"):
        project_trajectory(obj, d, [states[0], bad, states[2]])
    project_trajectory(obj, d, states)  # finite checkpoints still project


RECIPE = """
import torch
def recipe():
    raise RuntimeError("the recipe was loaded: the bad span was not refused first")
"""


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["analyze", "--span", "nan"], "span: axis 0 has nan"),
        (["analyze", "--span", "-1"], "span: axis 0 has -1"),
        (["analyze", "--span", "0", "--span-units", "relative"], "span: axis 0 has 0"),
        (["analyze", "--span", "2:1"], "span: axis 0 has"),
        (["track", "--checkpoints", "nothing/*.pt", "--span", "auto"], "--span: track has no automatic span"),
    ],
)
def test_cli_refuses_a_bad_span_before_loading_the_recipe(tmp_path, capsys, argv, match):
    rec = tmp_path / "rec.py"
    rec.write_text(RECIPE)
    rc = main([argv[0], str(rec), *argv[1:], "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert match in err and "recipe was loaded" not in err
    assert not (tmp_path / "run").exists()


def test_checkpoint_files_are_ordered_by_step_not_by_a_metric_in_the_name(tmp_path):
    # Lightning's default names end in the monitored metric; sorting by the last number put epoch 2 first.
    from landform.checkpoints import checkpoint_paths, step_from_name

    names = ["epoch=0-step=100-val_loss=0.92.ckpt", "epoch=1-step=200-val_loss=0.41.ckpt",
             "epoch=2-step=300-val_loss=0.35.ckpt"]
    for n in reversed(names):
        (tmp_path / n).write_bytes(b"")
    assert [p.name for p in checkpoint_paths(tmp_path)] == names
    assert [step_from_name(n) for n in names] == [100, 200, 300]
    assert step_from_name("model_epoch5_acc0.91.pt") == 5 and step_from_name("ckpt_step1200.pt") == 1200
    assert step_from_name("step-10.pt") == 10 and step_from_name("final.pt") is None


def test_landscaper_span_refuses_even_steps_and_non_numbers():
    # landscaper's even grid runs from -distance to distance * (s//2 - 1) / (s/2): no symmetric span gives it, and
    # landscaper_span(0.05, 50) used to return 0.05 as if it did.
    from landform import landscaper_span

    with pytest.raises(InputError, match=r"steps: landscaper's grid of 50 \(even\) steps .* to 0.048 "):
        landscaper_span(0.05, 50)
    with pytest.raises(InputError, match="distance: expected a finite number > 0"):
        landscaper_span("a", 5)
    assert landscaper_span(0.05, 51) == 0.05 * 25 / 25.5


@pytest.mark.parametrize("span", [float("nan"), -1.0, 0.0])
def test_runconfig_refuses_a_bad_span_before_any_stage(span):
    from landform.run import RunConfig

    with pytest.raises(InputError, match="span: axis 0 has"):
        RunConfig(span=span).validate()

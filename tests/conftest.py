from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

# The case-study recipes live in examples/recipes (they need the 'examples' extra); tests import them as recipes.*
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


class TinyCNN(nn.Module):
    """Conv + BatchNorm + Linear: exercises eval-mode BatchNorm and several parameter tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3 * 4 * 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def make_mlp(seed: int = 0, d_in: int = 4, hidden: int = 5, d_out: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, d_out))


def make_cnn(seed: int = 0) -> TinyCNN:
    torch.manual_seed(seed)
    m = TinyCNN()
    # non-trivial running statistics so that eval vs train mode differ
    with torch.no_grad():
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 2.0)
    return m


@pytest.fixture
def mlp_problem():
    model = make_mlp()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 4, generator=g)
    y = torch.randint(0, 3, (40,), generator=g)
    return model, (x, y), nn.functional.cross_entropy


@pytest.fixture
def cnn_problem():
    model = make_cnn()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(30, 1, 4, 4, generator=g)
    y = torch.randint(0, 4, (30,), generator=g)
    return model, (x, y), nn.functional.cross_entropy


def perturbed_loss(model: nn.Module, data, loss_fn, coeffs, directions) -> float:
    """Reference: a deep copy of the model with its parameters moved by hand, evaluated in eval mode."""
    import copy

    m = copy.deepcopy(model).eval()
    params = [p for p in m.parameters() if p.requires_grad]
    with torch.no_grad():
        offset = 0
        for p in params:
            n = p.numel()
            delta = sum(float(c) * d[offset : offset + n] for c, d in zip(coeffs, directions, strict=True))
            p.add_(torch.as_tensor(delta).view_as(p).to(p.dtype))
            offset += n
        x, y = data
        return float(loss_fn(m(x), y))


CHROMIUM = "/usr/bin/chromium"


def require_chromium():
    """Playwright's sync API for the browser tests, with Debian's chromium present. Outside CI a missing
    browser skips loudly; with the environment variable CI set (as .ci/run does) it is a failure, so CI can
    never pass without having run the browser tests."""
    import importlib.util
    import os

    problem = None
    if not os.path.exists(CHROMIUM):
        problem = f"{CHROMIUM} is missing (apt-get install chromium)"
    elif importlib.util.find_spec("playwright") is None:
        problem = "playwright is not installed (pip install playwright)"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"BROWSER TESTS CANNOT RUN IN CI: {problem}", pytrace=False)
        msg = f"BROWSER TESTS SKIPPED: {problem}"
        print("\n" + "!" * 80 + "\n" + msg + "\n" + "!" * 80)
        pytest.skip(msg)
    from playwright import sync_api

    return sync_api


@pytest.fixture
def stop_after_chunks(monkeypatch):
    """``with stop_after_chunks(n): run()``: the run is stopped by a KeyboardInterrupt (a Ctrl-C) when it goes to
    write a chunk after ``n`` chunks of grid stores are on disk; the block must raise it, and the real writer is
    back after the block."""
    from contextlib import contextmanager

    from landform.store import GridStore

    real = GridStore.write_chunk

    @contextmanager
    def stop(n: int):
        left = [n]

        def write(self, *a, **k):
            if left[0] == 0:
                raise KeyboardInterrupt
            left[0] -= 1
            return real(self, *a, **k)

        monkeypatch.setattr(GridStore, "write_chunk", write)
        try:
            with pytest.raises(KeyboardInterrupt):
                yield
        finally:
            monkeypatch.setattr(GridStore, "write_chunk", real)

    return stop


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# Tests that only repeat a path another test in the README's command already covers (another dimension of the same
# report, a second example script on the same pipeline, a larger size of a budget check) and cost 5-15 s each on 2
# cores: run with `python -m pytest -m slow`. Measured by `python -m pytest --durations=60` on an idle machine; with
# them the command took 6 min 26 s, over the 5-minute budget (session 5: 4 min 59 s with the training-dynamics smoke
# test, 16 s, before it joined this list).
SLOW_IDS = {
    "tests/test_track.py::test_case_study_scripts_run_at_tiny_size[pretraining_dynamics.py]",
    "tests/test_track.py::test_case_study_scripts_run_at_tiny_size[training_dynamics.py]",
    "tests/test_examples.py::test_example_runs[dimension_sweep.py]",
    "tests/test_examples.py::test_example_runs[taxonomy_sweep.py]",
    "tests/test_viewer.py::test_size_budget_of_a_large_5d_report",
    "tests/test_viewer.py::test_decimated_report_slices_follow_the_sub_grid",
    "tests/test_viewer.py::test_report_slices_volume_and_basins_in_chromium[3]",
    "tests/test_report.py::test_report_renders_in_chromium[1]",
    "tests/test_report.py::test_report_renders_in_chromium[3]",
    "tests/test_progressive_calibration.py::test_two_sigma_covers_about_95_percent_late",
    "tests/test_cli_progressive.py::test_progressive_run_and_report",
    "tests/test_minilm.py::test_length_batches_keep_the_loss_and_the_curvature",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in SLOW_IDS:
            item.add_marker(pytest.mark.slow)

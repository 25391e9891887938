"""landform: arbitrary-dimensional loss-landscape analysis of PyTorch models.

Names are loaded lazily, so ``import landform`` and the numpy-only parts (``landform.topology``,
``landform.load_landscape``, plots of saved results) work without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "LandformError": "errors",
    "InputError": "errors",
    "StoreError": "errors",
    "NonFiniteError": "errors",
    "Objective": "objective",
    "Directions": "directions",
    "random_directions": "directions",
    "as_directions": "directions",
    "grid_axes": "evaluate",
    "grid_landscape": "evaluate",
    "progressive_landscape": "progressive",
    "significant_topology": "progressive",
    "estimate_run": "estimate",
    "RunEstimate": "estimate",
    "Landscape": "results",
    "load_landscape": "results",
    "RunConfig": "run",
    "RunResult": "results",
    "load_run": "results",
    "hessian_eigenpairs": "hessian",
    "hessian_trace": "hessian",
    "hessian_density": "hessian",
    "hessian_directions": "hessian",
    "Eigenpairs": "hessian",
    "TraceEstimate": "hessian",
    "SpectralDensity": "hessian",
    "auto_span": "geometry",
    "AutoSpan": "geometry",
    "landscaper_span": "geometry",
    "normalize_directions": "geometry",
    "sample_points": "sampling",
    "scattered_landscape": "sampling",
    "adaptive_landscape": "sampling",
    "dimension_sweep": "sampling",
    "ScatteredLandscape": "results",
    "cka": "metrics.representation",
    "layer_cka": "metrics.representation",
    "mode_connectivity": "metrics.connectivity",
    "sharpness": "metrics.perturbation",
    "robust_smad": "metrics.robust",
    "bottleneck_distance": "metrics.diagrams",
    "wasserstein_distance": "metrics.diagrams",
    "Checkpoint": "checkpoints",
    "load_checkpoints": "checkpoints",
    "checkpoint_paths": "checkpoints",
    "pca_directions": "trajectory",
    "project_trajectory": "trajectory",
    "plane_directions": "trajectory",
    "linear_path": "trajectory",
    "Trajectory": "projection",
    "load_trajectory": "projection",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'landform' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

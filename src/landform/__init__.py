"""landform: arbitrary-dimensional loss-landscape analysis of PyTorch models.

Names are loaded lazily, so ``import landform`` and the numpy-only parts (``landform.topology``,
``landform.load_landscape``, plots of saved results) work without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # editors and type checkers see the names; at run time they load on first use
    from .checkpoints import Checkpoint, checkpoint_paths, load_checkpoints
    from .directions import Directions, as_directions, random_directions
    from .errors import InputError, LandformError, NonFiniteError, StoreError
    from .estimate import RunEstimate, estimate_run
    from .evaluate import grid_axes, grid_landscape
    from .geometry import AutoSpan, auto_span, landscaper_span, normalize_directions
    from .hessian import (
        Eigenpairs,
        SpectralDensity,
        TraceEstimate,
        hessian_density,
        hessian_directions,
        hessian_eigenpairs,
        hessian_trace,
    )
    from .metrics.connectivity import mode_connectivity
    from .metrics.diagrams import bottleneck_distance, wasserstein_distance
    from .metrics.perturbation import sharpness
    from .metrics.representation import cka, layer_cka
    from .metrics.robust import robust_smad
    from .objective import Objective
    from .progressive import progressive_landscape, significant_topology
    from .projection import Trajectory, load_trajectory
    from .results import Landscape, RunResult, ScatteredLandscape, load_landscape, load_run
    from .run import RunConfig
    from .sampling import adaptive_landscape, dimension_sweep, sample_points, scattered_landscape
    from .trajectory import linear_path, pca_directions, plane_directions, project_trajectory


# the same names as _EXPORTS, spelled out so that tools that do not run code see them (a test checks)
__all__ = [
    "__version__",
    "LandformError",
    "InputError",
    "StoreError",
    "NonFiniteError",
    "Objective",
    "Directions",
    "random_directions",
    "as_directions",
    "grid_axes",
    "grid_landscape",
    "progressive_landscape",
    "significant_topology",
    "estimate_run",
    "RunEstimate",
    "Landscape",
    "load_landscape",
    "RunConfig",
    "RunResult",
    "load_run",
    "hessian_eigenpairs",
    "hessian_trace",
    "hessian_density",
    "hessian_directions",
    "Eigenpairs",
    "TraceEstimate",
    "SpectralDensity",
    "auto_span",
    "AutoSpan",
    "landscaper_span",
    "normalize_directions",
    "sample_points",
    "scattered_landscape",
    "adaptive_landscape",
    "dimension_sweep",
    "ScatteredLandscape",
    "cka",
    "layer_cka",
    "mode_connectivity",
    "sharpness",
    "robust_smad",
    "bottleneck_distance",
    "wasserstein_distance",
    "Checkpoint",
    "load_checkpoints",
    "checkpoint_paths",
    "pca_directions",
    "project_trajectory",
    "plane_directions",
    "linear_path",
    "Trajectory",
    "load_trajectory",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'landform' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

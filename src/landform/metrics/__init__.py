"""Metrics beyond curvature: CKA, mode connectivity, sharpness, robust SMAD, diagram distances, taxonomy.

Loaded lazily: ``landform.metrics.diagrams`` and ``landform.metrics.representation`` need no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "cka": "representation",
    "hsic": "representation",
    "layer_cka": "representation",
    "Connectivity": "connectivity",
    "mode_connectivity": "connectivity",
    "Sharpness": "perturbation",
    "sharpness": "perturbation",
    "RobustSMAD": "robust",
    "robust_smad": "robust",
    "bottleneck_distance": "diagrams",
    "wasserstein_distance": "diagrams",
    "Taxonomy": "phases",
    "taxonomy": "phases",
    "classify_phase": "phases",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'landform.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)

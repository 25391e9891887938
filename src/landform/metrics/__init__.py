"""Metrics beyond curvature: CKA, mode connectivity, sharpness, robust SMAD, diagram distances, taxonomy.

Loaded lazily: ``landform.metrics.diagrams`` and ``landform.metrics.representation`` need no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # editors and type checkers see the names; at run time they load on first use
    from .connectivity import Connectivity, mode_connectivity
    from .diagrams import bottleneck_distance, wasserstein_distance
    from .perturbation import Sharpness, sharpness
    from .phases import Taxonomy, classify_phase, taxonomy
    from .representation import cka, hsic, layer_cka
    from .robust import RobustSMAD, robust_smad


# the same names as _EXPORTS, spelled out so that tools that do not run code see them (a test checks)
__all__ = [
    "cka",
    "hsic",
    "layer_cka",
    "Connectivity",
    "mode_connectivity",
    "Sharpness",
    "sharpness",
    "RobustSMAD",
    "robust_smad",
    "bottleneck_distance",
    "wasserstein_distance",
    "Taxonomy",
    "taxonomy",
    "classify_phase",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'landform.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)

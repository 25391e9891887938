"""What a result records about where it was computed: versions and peak memory. Package-internal."""

from __future__ import annotations

import platform
import sys

import numpy as np
import torch

__all__ = ["versions", "peak_rss_mb"]


def peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def versions() -> dict[str, str]:
    from . import __version__

    return {
        "landform": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }

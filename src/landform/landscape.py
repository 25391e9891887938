"""The :class:`Landscape` result (defined in :mod:`landform.results`, re-exported here). numpy only."""

from __future__ import annotations

from .results import Landscape

__all__ = ["Landscape"]

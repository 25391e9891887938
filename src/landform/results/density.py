"""A saved Hessian spectral density (``density.npz``). numpy only."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .._npz import read_npz, write_npz
from ..errors import StoreError

__all__ = ["SavedDensity", "save_density", "load_density", "DENSITY_FORMAT", "DENSITY_SCHEMA_VERSION"]

DENSITY_FORMAT, DENSITY_SCHEMA_VERSION = "landform.density", 1


@dataclass(frozen=True, eq=False)
class SavedDensity:
    """A saved Hessian spectral density: ``density`` on ``grid``; ``nodes``/``weights`` the SLQ quadrature
    (None in files that did not keep them); ``key`` the identity of its inputs (run cache)."""

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray | None = None
    weights: np.ndarray | None = None
    n_hvp: int | None = None
    key: str | None = None


def save_density(path: str | os.PathLike, d: SavedDensity) -> None:
    """Write ``d`` to ``path`` (an ``.npz``) atomically."""
    meta = {"format": DENSITY_FORMAT, "schema_version": DENSITY_SCHEMA_VERSION, "n_hvp": d.n_hvp, "key": d.key}
    arrays = {"grid": np.asarray(d.grid), "density": np.asarray(d.density)}
    if d.nodes is not None:
        arrays.update(nodes=np.asarray(d.nodes), weights=np.asarray(d.weights))
    write_npz(path, meta, **arrays)


def load_density(path: str | os.PathLike) -> SavedDensity:
    """Read a density written by :func:`save_density` (or by landform 0.1's ``analyze``)."""
    meta, z = read_npz(path, DENSITY_FORMAT, DENSITY_SCHEMA_VERSION, ("grid", "density"), legacy=True)
    if z["grid"].shape != z["density"].shape:
        raise StoreError(f"{path}: grid and density differ in shape; delete the file to recompute.")
    return SavedDensity(z["grid"], z["density"], z.get("nodes"), z.get("weights"), meta.get("n_hvp"), meta.get("key"))

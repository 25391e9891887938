"""Directions as saved in a run folder (``directions.npz``). numpy only."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._npz import read_npz, write_npz
from ..errors import StoreError

__all__ = ["SavedDirections", "save_directions", "load_directions", "DIRECTIONS_FORMAT", "DIRECTIONS_SCHEMA_VERSION"]

DIRECTIONS_FORMAT, DIRECTIONS_SCHEMA_VERSION = "landform.directions", 1


@dataclass(frozen=True, eq=False)
class SavedDirections:
    """Directions as saved in a run folder: ``vectors[i]`` is direction i over the trainable parameters.

    ``spec``, ``dims`` and ``seed`` are the request that produced them (the run reuses them only for the same
    request); ``kind``, ``normalization``, ``eigenvalues`` and ``extra`` describe them; ``key`` identifies the
    objective and request they were computed for (None in files of landform 0.1).
    """

    vectors: np.ndarray
    kind: str
    normalization: str | None = None
    seed: int | None = None
    eigenvalues: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    spec: str | None = None
    dims: int | None = None
    key: str | None = None

    def matches(self, spec: str, dims: int, seed: int) -> bool:
        """True when these directions answer the request (spec, dims, seed)."""
        return self.spec == spec and self.dims == dims and self.seed == seed


def save_directions(path: str | os.PathLike, d: SavedDirections) -> None:
    """Write ``d`` to ``path`` (an ``.npz``) atomically."""
    meta = {
        "format": DIRECTIONS_FORMAT,
        "schema_version": DIRECTIONS_SCHEMA_VERSION,
        "spec": d.spec,
        "dims": d.dims,
        "seed": d.seed,
        "kind": d.kind,
        "normalization": d.normalization,
        "eigenvalues": None if d.eigenvalues is None else [float(x) for x in d.eigenvalues],
        "extra": d.extra,
        "key": d.key,
    }
    write_npz(path, meta, vectors=np.asarray(d.vectors))


def load_directions(path: str | os.PathLike) -> SavedDirections:
    """Read directions written by :func:`save_directions` (or by landform 0.1's ``analyze``)."""
    meta, z = read_npz(path, DIRECTIONS_FORMAT, DIRECTIONS_SCHEMA_VERSION, ("vectors",), legacy=True)
    vec = z["vectors"]
    if vec.ndim != 2:
        raise StoreError(f"{path}: vectors of shape {vec.shape}, expected (n, P); delete the file to recompute.")
    ev = meta.get("eigenvalues")
    return SavedDirections(
        vec,
        meta.get("kind", "user"),
        meta.get("normalization"),
        meta.get("seed"),
        None if ev is None else np.asarray(ev, dtype=np.float64),
        meta.get("extra") or {},
        meta.get("spec"),
        meta.get("dims"),
        meta.get("key"),
    )

"""The resumable grid store (schema version 1); the format's readers and writers live in
:mod:`landform.results` (re-exported here). numpy only: loading needs no torch.

A landscape is a directory::

    landscape.json     {"format": "landform.landscape", "schema_version": 1, "shape": [...],
                        "axes": [[...], ...], "directions": {...}, "center_value": float,
                        "provenance": {...}, "fingerprint": str, "chunk_points": int, "complete": bool}
    values.npy         float64 array of shape ``shape`` (once complete)
    evaluated.npy      bool mask (only for a landscape saved incomplete)
    chunks/c%08d.npy   while a run is in progress: float64 values of flat points
                       [i * chunk_points, (i + 1) * chunk_points) in C order

Every file is written to a temporary name in the same directory, flushed to disk and renamed over the
final name (``os.replace`` is atomic on POSIX), so a reader never sees half a file and a run killed at
any moment loses at most the chunks in flight. ``landscape.json`` is written first with
``complete: false``; an interrupted run is resumed by opening the same directory with the same
fingerprint (same weights, directions, axes and data), which skips the chunks already on disk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import StoreError
from .results import (
    FORMAT,
    META,
    SCHEMA_VERSION,
    Landscape,
    assemble_chunks,
    atomic_save_npy,
    atomic_write_bytes,
    atomic_write_json,
    done_chunks,
    landscape_meta,
    load_landscape,
    read_landscape_meta,
    save_landscape,
)

__all__ = [
    "SCHEMA_VERSION",
    "save_landscape",
    "load_landscape",
    "GridStore",
    "atomic_write_bytes",
    "atomic_save_npy",
    "atomic_write_json",
    "FORMAT",
    "META",
]

class GridStore:
    """A landscape directory being filled chunk by chunk (used by :func:`landform.grid_landscape`)."""

    def __init__(self, path: str | os.PathLike, *, meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.meta = meta if meta is not None else read_landscape_meta(self.path)

    @classmethod
    def open(cls, path: str | os.PathLike, template: Landscape, *, fingerprint: str, chunk_points: int) -> GridStore:
        """Open ``path`` for the run described by ``template`` and ``fingerprint``, creating it if needed.

        Raises :class:`StoreError` when ``path`` holds another run or something that is not a landscape.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path}: exists and is not a directory; choose another output path.")
        if (path / META).exists():
            meta = read_landscape_meta(path)
            if meta.get("fingerprint") != fingerprint or list(meta.get("shape", [])) != list(template.shape):
                raise StoreError(
                    f"{path}: holds a landscape of a different run (other weights, directions, grid or data). "
                    "Use another output path, or delete this one to start over."
                )
            return cls(path, meta=meta)  # keeps the chunk layout already on disk
        if path.exists() and any(path.iterdir()):
            raise StoreError(
                f"{path}: a non-empty directory that is not a landform landscape; refusing to write there."
            )
        meta = landscape_meta(template, fingerprint=fingerprint, chunk_points=chunk_points, complete=False)
        atomic_write_json(path / META, meta)
        return cls(path, meta=meta)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.meta["shape"])

    @property
    def chunk_points(self) -> int:
        return int(self.meta["chunk_points"])

    @property
    def n_chunks(self) -> int:
        total = int(np.prod(self.shape))
        return -(-total // self.chunk_points)

    @property
    def complete(self) -> bool:
        return bool(self.meta.get("complete"))

    def chunk_range(self, i: int) -> tuple[int, int]:
        total = int(np.prod(self.shape))
        return i * self.chunk_points, min(total, (i + 1) * self.chunk_points)

    def done_chunks(self) -> set[int]:
        return done_chunks(self.path)

    def write_chunk(self, i: int, values: np.ndarray) -> None:
        lo, hi = self.chunk_range(i)
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (hi - lo,):
            raise StoreError(f"chunk {i}: expected {hi - lo} values, got {values.shape}.")
        atomic_save_npy(self.path / "chunks" / f"c{i:08d}.npy", values)

    def _assemble(self) -> tuple[np.ndarray, np.ndarray]:
        return assemble_chunks(self.path, self.meta)

    def finalize(self, ls: Landscape) -> None:
        """Write the complete values, mark the store complete, and remove the chunk files."""
        atomic_save_npy(self.path / "values.npy", ls.values)
        meta = landscape_meta(ls, fingerprint=self.meta["fingerprint"], chunk_points=self.chunk_points, complete=True)
        atomic_write_json(self.path / META, meta)
        self.meta = meta
        chunks = self.path / "chunks"
        if chunks.exists():
            for name in os.listdir(chunks):
                (chunks / name).unlink()
            chunks.rmdir()

"""The resumable grid store (schema version 2); the format's readers and writers live in
:mod:`landform.results` (re-exported here). numpy only: loading needs no torch.

A landscape is a directory::

    landscape.json     {"format": "landform.landscape", "schema_version": 2, "shape": [...],
                        "axes": [[...], ...], "directions": {...}, "center_value": float,
                        "provenance": {...}, "fingerprint": {component: sha256 hex, ...},
                        "chunk_points": int, "complete": bool}
    values.npy         float64 array of shape ``shape`` (once complete)
    evaluated.npy      bool mask (only for a landscape saved incomplete)
    chunks/c%08d.npy   while a run is in progress: float64 values of flat points
                       [i * chunk_points, (i + 1) * chunk_points) in C order
    metrics.npy        float64 (m, *shape): the per-point metrics named by ``"metrics": [names]`` in
                       landscape.json (only when metrics were recorded; stores without them load as before)
    chunks/m%08d.npy   while in progress: float64 (points, m) metric values of chunk i, written before c%08d

Every file is written to a temporary name in the same directory, flushed to disk and renamed over the
final name (``os.replace`` is atomic on POSIX), so a reader never sees half a file and a run killed at
any moment loses at most the chunks in flight. ``landscape.json`` is written first with
``complete: false``; an interrupted run is resumed by opening the same directory with the same
fingerprint, which skips the chunks already on disk.

The fingerprint holds one hash per component the values depend on (``data``, ``loss``, ``weights``,
``buffers``, ``model``, ``directions``, ``axes``; :mod:`landform.fingerprint` computes them). A store whose
fingerprint differs is refused with a message naming the components that changed; one whose fingerprint
matches is also refused when the loss at the centre, recomputed, is not bitwise the stored one. Schema 1
stores (one opaque fingerprint string, blind to the loss's code and to all but two batches) still load with
:func:`load_landscape`, but are never resumed: delete them, or choose another output path, to recompute.
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
    assemble_metric_chunks,
    atomic_save_npy,
    atomic_write_bytes,
    atomic_write_json,
    done_chunks,
    landscape_meta,
    load_landscape,
    read_landscape_meta,
    save_landscape,
    save_metrics,
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
    "FINGERPRINT_COMPONENTS",
    "fingerprint_changes",
    "describe_changes",
]

#: What each fingerprint component covers, in the order mismatches are reported.
FINGERPRINT_COMPONENTS: dict[str, str] = {
    "data": "the data (the inputs or targets of some batch, their order, or how they are batched)",
    "loss": "the loss function (its code, closure variables, default arguments, the globals it uses, or its "
    "hyperparameters)",
    "weights": "the model's parameters",
    "buffers": "the model's buffers (e.g. BatchNorm running statistics)",
    "model": "the model's structure or code (its modules, their hyperparameters or forward code)",
    "directions": "the directions",
    "axes": "the grid axes (span or resolution)",
}


def fingerprint_changes(stored: dict[str, str], current: dict[str, str]) -> list[str]:
    """Names of the components whose hashes differ (or that only one side has), known components first.

    Examples
    --------
    >>> fingerprint_changes({"data": "a", "loss": "b"}, {"data": "a", "loss": "c"})
    ['loss']
    """
    keys = [k for k in FINGERPRINT_COMPONENTS if k in stored or k in current]
    keys += sorted((set(stored) | set(current)) - set(FINGERPRINT_COMPONENTS))
    return [k for k in keys if stored.get(k) != current.get(k)]


def describe_changes(changed: list[str]) -> str:
    """``"loss (the loss function ...); data (...)"`` for the components in ``changed``."""
    return "; ".join(f"{k} ({FINGERPRINT_COMPONENTS.get(k, k)})" for k in changed)


def _same_float(a: Any, b: Any) -> bool:
    """Bitwise equality of two float64 values (NaN equals NaN; 0.0 differs from -0.0)."""
    try:
        x, y = np.float64(a), np.float64(b)
    except (TypeError, ValueError):
        return False
    if np.isnan(x) or np.isnan(y):
        return bool(np.isnan(x) and np.isnan(y))
    return x.tobytes() == y.tobytes()



class GridStore:
    """A landscape directory being filled chunk by chunk (used by :func:`landform.grid_landscape`)."""

    def __init__(self, path: str | os.PathLike, *, meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.meta = meta if meta is not None else read_landscape_meta(self.path)

    @classmethod
    def open(
        cls, path: str | os.PathLike, template: Landscape, *, fingerprint: dict[str, str], chunk_points: int
    ) -> GridStore:
        """Open ``path`` for the run described by ``template`` and ``fingerprint``, creating it if needed.

        ``fingerprint`` maps component names to hashes (:func:`landform.fingerprint.fingerprint`).
        ``template.center_value`` is the loss at the centre computed now; a store that matches the fingerprint
        must hold bitwise that value.

        Raises :class:`StoreError` when ``path`` holds another run or something that is not a landscape.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path}: exists and is not a directory; choose another output path.")
        if (path / META).exists():
            meta = read_landscape_meta(path)
            cls._check_same_run(path, meta, template, fingerprint)
            return cls(path, meta=meta)  # keeps the chunk layout already on disk
        if path.exists() and any(path.iterdir()):
            raise StoreError(
                f"{path}: a non-empty directory that is not a landform landscape; refusing to write there."
            )
        meta = landscape_meta(template, fingerprint=fingerprint, chunk_points=chunk_points, complete=False)
        atomic_write_json(path / META, meta)
        return cls(path, meta=meta)

    @staticmethod
    def _check_same_run(path: Path, meta: dict[str, Any], template: Landscape, fingerprint: dict[str, str]) -> None:
        stored = meta.get("fingerprint")
        fix = f"Pass another output path (out=...), or delete {path} to recompute it."
        if not isinstance(stored, dict) or not stored:
            why = (
                f"was written by an older landform (store schema {meta.get('schema_version')}) whose fingerprint "
                "cannot show that it belongs to this objective"
                if not isinstance(stored, dict)
                else "has no fingerprint (it was saved with Landscape.save, not written by a run)"
            )
            raise StoreError(
                f"{path}: {why}, so it is not resumed or reused. Its values still load with "
                f"landform.load_landscape({str(path)!r}). {fix}"
            )
        changed = fingerprint_changes(stored, fingerprint)
        if changed:
            raise StoreError(
                f"{path}: holds a landscape of a different run; changed since it was written: "
                f"{describe_changes(changed)}. {fix}"
            )
        if list(meta.get("shape", [])) != list(template.shape):
            raise StoreError(f"{path}: holds a grid of shape {meta.get('shape')}, this run's is {template.shape}. {fix}")
        if not _same_float(meta.get("center_value"), template.center_value):
            raise StoreError(
                f"{path}: the loss at the centre is {template.center_value!r} now but {meta.get('center_value')!r} in "
                "the store, although every fingerprint component matches: something the fingerprint cannot see "
                "changed (torch version, device, dtype, evaluation path, thread-dependent kernels, or a loss that "
                f"reads hidden state), and mixing the two would give a landscape of no single objective. {fix}"
            )

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

    def write_chunk(self, i: int, values: np.ndarray, metrics: np.ndarray | None = None) -> None:
        """Write chunk ``i``'s values (and first its (points, m) metrics, so a chunk on disk has both)."""
        lo, hi = self.chunk_range(i)
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (hi - lo,):
            raise StoreError(f"chunk {i}: expected {hi - lo} values, got {values.shape}.")
        if metrics is not None:
            atomic_save_npy(self.path / "chunks" / f"m{i:08d}.npy", np.asarray(metrics, dtype=np.float64))
        atomic_save_npy(self.path / "chunks" / f"c{i:08d}.npy", values)

    def assemble(self) -> tuple[np.ndarray, np.ndarray]:
        """Values (NaN where missing) and the evaluated mask of the chunks written so far."""
        return assemble_chunks(self.path, self.meta)

    def assemble_metrics(self, m: int) -> np.ndarray:
        """(m, *shape) per-point metric values of the chunks written so far (NaN where missing)."""
        return assemble_metric_chunks(self.path, self.meta, m)

    def finalize(self, ls: Landscape) -> None:
        """Write the complete values, mark the store complete, and remove the chunk files."""
        atomic_save_npy(self.path / "values.npy", ls.values)
        save_metrics(self.path, ls)
        meta = landscape_meta(ls, fingerprint=self.meta["fingerprint"], chunk_points=self.chunk_points, complete=True)
        atomic_write_json(self.path / META, meta)
        self.meta = meta
        chunks = self.path / "chunks"
        if chunks.exists():
            for name in os.listdir(chunks):
                (chunks / name).unlink()
            chunks.rmdir()

"""On-disk format of a landscape (schema version 1). numpy only: loading needs no torch.

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

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import StoreError
from .landscape import Landscape

__all__ = [
    "SCHEMA_VERSION",
    "save_landscape",
    "load_landscape",
    "GridStore",
    "atomic_write_bytes",
    "atomic_save_npy",
]

SCHEMA_VERSION = 1
FORMAT = "landform.landscape"
META = "landscape.json"
_CHUNK_RE = re.compile(r"^c(\d{8})\.npy$")


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike):
    """Yield a binary file in ``path``'s directory; on success flush, fsync and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    with _atomic_file(path) as fh:
        fh.write(data)


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` to ``path`` atomically."""
    with _atomic_file(path) as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, default=_json_default) + "\n").encode())


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def _meta(ls: Landscape, *, fingerprint: str = "", chunk_points: int = 0, complete: bool = True) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "shape": list(ls.shape),
        "axes": [a.tolist() for a in ls.axes],
        "directions": ls.directions,
        "center_value": ls.center_value,
        "provenance": ls.provenance,
        "fingerprint": fingerprint,
        "chunk_points": chunk_points,
        "complete": complete,
    }


def _read_meta(path: Path) -> dict[str, Any]:
    meta_path = path / META
    if not meta_path.exists():
        raise StoreError(f"{path}: not a landform landscape (no {META}).")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"{meta_path}: unreadable or corrupt ({exc}); delete the directory to start over.") from exc
    if meta.get("format") != FORMAT:
        raise StoreError(f"{meta_path}: format is {meta.get('format')!r}, expected {FORMAT!r}; not a landform store.")
    version = meta.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise StoreError(
            f"{meta_path}: schema version {version!r} is newer than this landform understands ({SCHEMA_VERSION}); "
            "upgrade landform."
        )
    return meta


def save_landscape(ls: Landscape, path: str | os.PathLike) -> None:
    """Save a landscape to the directory ``path`` (created if needed; an existing landscape is replaced)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path}: exists and is not a directory.")
    if path.exists() and any(path.iterdir()) and not (path / META).exists():
        raise StoreError(f"{path}: a non-empty directory that is not a landform landscape; refusing to write there.")
    atomic_save_npy(path / "values.npy", ls.values)
    if ls.evaluated is not None:
        atomic_save_npy(path / "evaluated.npy", ls.evaluated)
    elif (path / "evaluated.npy").exists():
        (path / "evaluated.npy").unlink()
    atomic_write_json(path / META, _meta(ls, complete=ls.complete))


def load_landscape(path: str | os.PathLike) -> Landscape:
    """Load a landscape saved by :meth:`Landscape.save` or written by a (possibly interrupted) run.

    An interrupted run loads as an incomplete landscape: missing points are NaN and ``evaluated`` is False
    there.
    """
    path = Path(path)
    meta = _read_meta(path)
    shape = tuple(int(s) for s in meta["shape"])
    axes = tuple(np.asarray(a, dtype=np.float64) for a in meta["axes"])
    evaluated = None
    if (path / "values.npy").exists():
        values = np.load(path / "values.npy", allow_pickle=False)
        if values.shape != shape:
            raise StoreError(f"{path}/values.npy: shape {values.shape}, but {META} says {shape}; the store is corrupt.")
        if (path / "evaluated.npy").exists():
            evaluated = np.load(path / "evaluated.npy", allow_pickle=False)
    else:
        values, evaluated = GridStore(path, meta=meta)._assemble()
    return Landscape(
        values=values,
        axes=axes,
        directions=meta.get("directions", {}),
        center_value=float(meta.get("center_value", float("nan"))),
        provenance=meta.get("provenance", {}),
        evaluated=evaluated,
    )


class GridStore:
    """A landscape directory being filled chunk by chunk (used by :func:`landform.grid_landscape`)."""

    def __init__(self, path: str | os.PathLike, *, meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.meta = meta if meta is not None else _read_meta(self.path)

    @classmethod
    def open(cls, path: str | os.PathLike, template: Landscape, *, fingerprint: str, chunk_points: int) -> GridStore:
        """Open ``path`` for the run described by ``template`` and ``fingerprint``, creating it if needed.

        Raises :class:`StoreError` when ``path`` holds another run or something that is not a landscape.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path}: exists and is not a directory; choose another output path.")
        if (path / META).exists():
            meta = _read_meta(path)
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
        meta = _meta(template, fingerprint=fingerprint, chunk_points=chunk_points, complete=False)
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
        d = self.path / "chunks"
        if not d.exists():
            return set()
        out = set()
        for name in os.listdir(d):
            m = _CHUNK_RE.match(name)
            if m:
                out.add(int(m.group(1)))
        return out

    def write_chunk(self, i: int, values: np.ndarray) -> None:
        lo, hi = self.chunk_range(i)
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (hi - lo,):
            raise StoreError(f"chunk {i}: expected {hi - lo} values, got {values.shape}.")
        atomic_save_npy(self.path / "chunks" / f"c{i:08d}.npy", values)

    def _assemble(self) -> tuple[np.ndarray, np.ndarray]:
        total = int(np.prod(self.shape))
        flat = np.full(total, np.nan)
        ev = np.zeros(total, dtype=bool)
        for i in sorted(self.done_chunks()):
            lo, hi = self.chunk_range(i)
            try:
                arr = np.load(self.path / "chunks" / f"c{i:08d}.npy", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise StoreError(
                    f"{self.path}: chunk {i} is corrupt ({exc}); delete that file to recompute it."
                ) from exc
            if arr.shape != (hi - lo,):
                raise StoreError(f"{self.path}: chunk {i} has {arr.shape[0]} values, expected {hi - lo}; delete it.")
            flat[lo:hi] = arr
            ev[lo:hi] = True
        return flat.reshape(self.shape), ev.reshape(self.shape)

    def finalize(self, ls: Landscape) -> None:
        """Write the complete values, mark the store complete, and remove the chunk files."""
        atomic_save_npy(self.path / "values.npy", ls.values)
        meta = _meta(ls, fingerprint=self.meta["fingerprint"], chunk_points=self.chunk_points, complete=True)
        atomic_write_json(self.path / META, meta)
        self.meta = meta
        chunks = self.path / "chunks"
        if chunks.exists():
            for name in os.listdir(chunks):
                (chunks / name).unlink()
            chunks.rmdir()

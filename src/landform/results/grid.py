"""The grid landscape on disk: a directory with ``landscape.json`` and ``values.npy`` (schema version 2), and
the chunk files of a run in progress; :func:`load_landscape` opens any saved landscape. numpy only.

The resumable writer is :class:`landform.store.GridStore`; the layout is described in :mod:`landform.store`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .._npz import atomic_save_npy, atomic_write_json
from .._validation import check_path
from ..errors import StoreError
from .landscape import Landscape, ScatteredLandscape

__all__ = [
    "FORMAT",
    "META",
    "SCHEMA_VERSION",
    "landscape_meta",
    "read_landscape_meta",
    "save_landscape",
    "load_grid",
    "load_landscape",
    "save_metrics",
    "assemble_chunks",
    "assemble_metric_chunks",
    "done_chunks",
]

SCHEMA_VERSION = 2  # grid landscape directory (version 1: one opaque fingerprint string; loads, never resumed)
FORMAT = "landform.landscape"
META = "landscape.json"
_CHUNK_RE = re.compile(r"^c(\d{8})\.npy$")


def landscape_meta(
    ls: Landscape, *, fingerprint: dict[str, str] | None = None, chunk_points: int = 0, complete: bool = True
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "shape": list(ls.shape),
        "axes": [a.tolist() for a in ls.axes],
        "directions": ls.directions,
        "center_value": ls.center_value,
        "provenance": ls.provenance,
        "fingerprint": dict(fingerprint or {}),
        "chunk_points": chunk_points,
        "complete": complete,
        **({"data_fraction": ls.data_fraction} if ls.data_fraction != 1.0 or ls.stderr is not None else {}),
        **({"metrics": list(ls.metrics)} if ls.metrics else {}),
    }


def read_landscape_meta(path: Path) -> dict[str, Any]:
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
    save_metrics(path, ls)
    if ls.evaluated is not None:
        atomic_save_npy(path / "evaluated.npy", ls.evaluated)
    elif (path / "evaluated.npy").exists():
        (path / "evaluated.npy").unlink()
    if ls.stderr is not None:
        atomic_save_npy(path / "stderr.npy", ls.stderr)
    elif (path / "stderr.npy").exists():
        (path / "stderr.npy").unlink()
    atomic_write_json(path / META, landscape_meta(ls, complete=ls.complete))


def _load_npy(f: Path) -> np.ndarray:
    try:
        return np.load(f, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise StoreError(f"{f}: unreadable or corrupt ({exc}); delete the landscape directory to recompute it.") from exc


def load_grid(path: str | os.PathLike) -> Landscape:
    meta = read_landscape_meta(path)
    try:
        shape = tuple(int(s) for s in meta["shape"])
        axes = tuple(np.asarray(a, dtype=np.float64) for a in meta["axes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(
            f"{path / META}: its 'shape' or 'axes' is missing or malformed ({exc!r}); delete the directory to recompute."
        ) from exc
    evaluated = None
    if (path / "values.npy").exists():
        values = _load_npy(path / "values.npy")
        if values.shape != shape:
            raise StoreError(f"{path}/values.npy: shape {values.shape}, but {META} says {shape}; the store is corrupt.")
        if (path / "evaluated.npy").exists():
            evaluated = _load_npy(path / "evaluated.npy")
    else:
        values, evaluated = assemble_chunks(path, meta)
    stderr = np.load(path / "stderr.npy", allow_pickle=False) if (path / "stderr.npy").exists() else None
    if stderr is not None and stderr.shape != shape:
        raise StoreError(f"{path}/stderr.npy: shape {stderr.shape}, but {META} says {shape}; the store is corrupt.")
    return Landscape(
        values=values,
        axes=axes,
        directions=meta.get("directions", {}),
        center_value=float(meta.get("center_value", float("nan"))),
        provenance=meta.get("provenance", {}),
        evaluated=evaluated,
        stderr=stderr,
        data_fraction=float(meta.get("data_fraction", 1.0)),
        metrics=_load_metrics(path, meta, shape),
        metrics_stderr=_load_metrics(path, meta, shape, "metrics_stderr.npy"),
    )


def save_metrics(path: Path, ls: Landscape) -> None:
    """Write ``metrics.npy`` (m, *shape) for a landscape with per-point metrics (remove a stale one otherwise)."""
    path = Path(path)
    if ls.metrics:
        atomic_save_npy(path / "metrics.npy", np.stack([ls.metrics[k] for k in ls.metrics]))
    elif (path / "metrics.npy").exists():
        (path / "metrics.npy").unlink()
    if ls.metrics_stderr:  # (m, *shape), the metrics' order
        atomic_save_npy(path / "metrics_stderr.npy", np.stack([ls.metrics_stderr[k] for k in ls.metrics]))
    elif (path / "metrics_stderr.npy").exists():
        (path / "metrics_stderr.npy").unlink()


def _load_metrics(
    path: Path, meta: dict[str, Any], shape: tuple[int, ...], file: str = "metrics.npy"
) -> dict[str, np.ndarray]:
    names = list(meta.get("metrics", []))
    if not names:
        return {}
    if (path / file).exists():
        arr = _load_npy(path / file)
    elif file != "metrics.npy":
        return {}  # metrics_stderr.npy: only estimates from part of the data have one
    else:
        arr = assemble_metric_chunks(path, meta, len(names))
    if arr.shape != (len(names), *shape):
        raise StoreError(f"{path}/{file}: shape {arr.shape}, expected {(len(names), *shape)}; the store is corrupt.")
    return dict(zip(names, arr, strict=True))


def assemble_metric_chunks(path: Path, meta: dict[str, Any], m: int) -> np.ndarray:
    """(m, *shape) metric values of an unfinished grid store's chunks (NaN where missing)."""
    flat, _, shape = _read_chunks(Path(path), meta, "m", m)
    return np.moveaxis(flat, 1, 0).reshape(m, *shape)


def _chunk_range(shape: tuple[int, ...], chunk_points: int, i: int) -> tuple[int, int]:
    total = int(np.prod(shape))
    return i * chunk_points, min(total, (i + 1) * chunk_points)


def done_chunks(path: Path) -> set[int]:
    """Indices of the chunk files present in the landscape directory ``path``."""
    d = Path(path) / "chunks"
    if not d.exists():
        return set()
    return {int(m.group(1)) for m in map(_CHUNK_RE.match, os.listdir(d)) if m}


def assemble_chunks(path: Path, meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Values (NaN where missing) and the evaluated mask of an unfinished grid store."""
    flat, ev, shape = _read_chunks(Path(path), meta, "c", None)
    return flat.reshape(shape), ev.reshape(shape)


def _read_chunks(
    path: Path, meta: dict[str, Any], prefix: str, m: int | None
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """The chunk files ``<prefix><i>.npy`` of a grid store laid end to end: flat (points,) values (``m`` None)
    or (points, m) metrics, NaN where no chunk is done; the evaluated mask; the grid's shape."""
    shape = tuple(int(s) for s in meta["shape"])
    chunk_points = int(meta["chunk_points"])
    total = int(np.prod(shape))
    flat = np.full((total,) if m is None else (total, m), np.nan)
    ev = np.zeros(total, dtype=bool)
    what, is_, has = ("chunk", "is", "has") if m is None else ("the metrics of chunk", "are", "have")
    for i in sorted(done_chunks(path)):
        lo, hi = _chunk_range(shape, chunk_points, i)
        fix = f"delete chunks/c{i:08d}.npy to recompute that chunk"
        try:
            arr = np.load(path / "chunks" / f"{prefix}{i:08d}.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: {what} {i} {is_} missing or corrupt ({exc}); {fix}.") from exc
        want = (hi - lo,) if m is None else (hi - lo, m)
        if arr.shape != want:
            raise StoreError(f"{path}: {what} {i} {has} shape {arr.shape}, expected {want}; {fix}.")
        flat[lo:hi] = arr
        ev[lo:hi] = True
    return flat, ev, shape


def load_landscape(path: str | os.PathLike) -> Landscape | ScatteredLandscape:
    """Open any saved landscape: a grid landscape directory or a scattered landscape ``.npz``.

    An interrupted grid run loads as an incomplete landscape: missing points are NaN and ``evaluated`` is
    False there.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> d = tempfile.mkdtemp()
    >>> Landscape(np.zeros((3, 2)), (np.arange(3.0), np.arange(2.0))).save(d + "/grid")
    >>> ScatteredLandscape(np.ones(4), np.zeros((4, 2))).save(d + "/s.npz")
    >>> load_landscape(d + "/grid").shape, load_landscape(d + "/s.npz").ndim
    ((3, 2), 2)
    """
    path = Path(check_path("path", path))
    if path.is_file():
        return ScatteredLandscape.load(path)
    return load_grid(path)

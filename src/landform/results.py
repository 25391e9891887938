"""The results layer: every saved result of landform, in versioned, schema-checked formats. numpy only.

Nothing here imports torch, so a run folder can be opened, analysed and plotted on any machine. Each format
names itself (``"format"``) and carries a ``schema_version``; a reader refuses a foreign file or a newer
version with a :class:`~landform.errors.StoreError` that says what to do.

=====================  ==========================================  =======================================
result                 on disk                                      reader
=====================  ==========================================  =======================================
grid landscape         directory: landscape.json + values.npy       :func:`load_landscape` -> Landscape
scattered landscape    ``.npz``: values, points, meta               :func:`load_landscape` -> ScatteredLandscape
directions             ``directions.npz``: vectors, meta            :func:`load_directions` -> SavedDirections
spectral density       ``density.npz``: grid, density, nodes, ...   :func:`load_density` -> SavedDensity
merge tree             ``merge_tree.npz``: the tree's arrays, meta   :func:`load_merge_tree` -> MergeTree
persistence pairs      ``persistence.npy``: (n, 2) float64          :func:`load_pairs`
run summary            ``summary.json``                             :func:`load_run` -> RunResult
=====================  ==========================================  =======================================

Every file is written to a temporary name in the same directory, flushed and renamed over the final name, so
a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError, StoreError

if TYPE_CHECKING:
    from .topology import MergeTree

__all__ = [
    "Landscape",
    "ScatteredLandscape",
    "SavedDirections",
    "SavedDensity",
    "TopologySummary",
    "HessianSummary",
    "SharpnessSummary",
    "RunResult",
    "load_landscape",
    "save_landscape",
    "load_directions",
    "save_directions",
    "load_density",
    "save_density",
    "load_merge_tree",
    "save_merge_tree",
    "load_pairs",
    "load_run",
    "atomic_write_bytes",
    "atomic_save_npy",
    "atomic_write_json",
    "SCHEMA_VERSION",
    "RUN_SCHEMA_VERSION",
]

SCHEMA_VERSION = 2  # grid landscape directory (version 1: one opaque fingerprint string; loads, never resumed)
FORMAT = "landform.landscape"
META = "landscape.json"
SCATTERED_FORMAT, SCATTERED_SCHEMA_VERSION = "landform.scattered", 1
DIRECTIONS_FORMAT, DIRECTIONS_SCHEMA_VERSION = "landform.directions", 1
DENSITY_FORMAT, DENSITY_SCHEMA_VERSION = "landform.density", 1
TREE_FORMAT, TREE_SCHEMA_VERSION = "landform.merge_tree", 1
RUN_FORMAT, RUN_SCHEMA_VERSION = "landform.run", 2  # version 1: summary.json before the format was named
_CHUNK_RE = re.compile(r"^c(\d{8})\.npy$")


def _check_format(meta: dict[str, Any], fmt: str, version: int, where: Any, *, legacy: bool = False) -> int:
    """The schema version of ``meta`` after checking its format; 0 for a legacy file without one (if allowed)."""
    got = meta.get("format")
    if got is None and legacy:
        return 0
    if got != fmt:
        raise StoreError(f"{where}: format is {got!r}, expected {fmt!r}; not a landform file of that kind.")
    v = meta.get("schema_version")
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise StoreError(f"{where}: schema version {v!r} is not a positive integer; the file is corrupt.")
    if v > version:
        raise StoreError(
            f"{where}: schema version {v!r} is newer than this landform understands ({version}); upgrade landform."
        )
    return v


def _write_npz(path: str | os.PathLike, meta: dict[str, Any], **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, meta=np.asarray(json.dumps(meta, default=_json_default)), **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _read_npz(
    path: str | os.PathLike, fmt: str, version: int, keys: tuple[str, ...], *, legacy: bool = False
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of an ``.npz`` written by :func:`_write_npz`, schema-checked; ``legacy`` accepts files
    without a format tag (written by landform 0.1's command line)."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no such file.")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, TypeError, zipfile.BadZipFile) as exc:  # TypeError: a .npy, not an .npz
        raise StoreError(f"{path}: unreadable or corrupt ({exc}); delete it to recompute.") from exc
    meta: dict[str, Any] = {}
    if "meta" in arrays:
        try:
            meta = json.loads(str(arrays.pop("meta")))
        except json.JSONDecodeError as exc:
            raise StoreError(f"{path}: corrupt metadata ({exc}); delete it to recompute.") from exc
    _check_format(meta, fmt, version, path, legacy=legacy)
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise StoreError(f"{path}: arrays {missing} are missing; delete the file to recompute it.")
    return meta, arrays


@dataclass(frozen=True, eq=False)
class Landscape:
    """Loss values on an n-dimensional grid.

    Attributes
    ----------
    values : numpy.ndarray, shape = resolutions
        ``values[i, j, ...]`` is the loss at ``theta0 + axes[0][i] * d_0 + axes[1][j] * d_1 + ...``. There is
        no transposition anywhere: plots put axis 0 on x and axis 1 on y. NaN and inf losses are kept as they
        are (see :attr:`n_nonfinite`); points not evaluated yet (an interrupted run) are NaN and False in
        :attr:`evaluated`.
    axes : tuple of numpy.ndarray
        One 1-D coordinate array per direction: the coefficient of that direction. For unit directions (Hessian
        eigenvectors, un-normalised random directions) it is the displacement in parameter space.
    directions : dict
        Metadata of the directions (kind, seed, normalization, eigenvalues, norms, fingerprint).
    center_value : float
        Loss at the unperturbed parameters.
    provenance : dict
        Parameter count, data size, seed, versions, timings, command.
    evaluated : numpy.ndarray of bool or None
        Mask of evaluated points; None means all were evaluated.
    stderr : numpy.ndarray or None
        Standard error of each value, same shape as ``values``, when the values are estimates from part of the
        data (:func:`landform.progressive_landscape`); None for exact full-data values.
    data_fraction : float
        Fraction of the data's samples behind the values (1.0 for a full-data landscape).
    metrics : dict of str to numpy.ndarray
        Extra per-point metrics recorded in the same forward passes as the loss (``grid_landscape(...,
        metrics=...)``), each of the shape of ``values``; empty when none were asked for.
    metrics_stderr : dict of str to numpy.ndarray
        Standard error of each metric, like ``stderr`` for the values, when they are estimates from part of the
        data (:func:`landform.progressive_landscape`); empty otherwise.
    """

    values: np.ndarray
    axes: tuple[np.ndarray, ...]
    directions: dict[str, Any] = field(default_factory=dict)
    center_value: float = float("nan")
    provenance: dict[str, Any] = field(default_factory=dict)
    evaluated: np.ndarray | None = None
    stderr: np.ndarray | None = None
    data_fraction: float = 1.0
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    metrics_stderr: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        axes = tuple(np.asarray(a, dtype=np.float64) for a in self.axes)
        if values.ndim != len(axes) or tuple(len(a) for a in axes) != values.shape:
            raise InputError(
                f"Landscape: values of shape {values.shape} do not match axes of lengths {[len(a) for a in axes]}."
            )
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "axes", axes)
        if self.evaluated is not None:
            ev = np.asarray(self.evaluated, dtype=bool)
            object.__setattr__(self, "evaluated", None if ev.all() else ev)
        if self.stderr is not None:
            se = np.asarray(self.stderr, dtype=np.float64)
            if se.shape != values.shape:
                raise InputError(f"Landscape: stderr of shape {se.shape} does not match values of shape {values.shape}.")
            object.__setattr__(self, "stderr", se)
        frac = float(self.data_fraction)
        if not 0.0 < frac <= 1.0:
            raise InputError(f"Landscape: data_fraction must be in (0, 1], got {frac}.")
        object.__setattr__(self, "data_fraction", frac)
        metrics = {str(k): np.asarray(v, dtype=np.float64) for k, v in (self.metrics or {}).items()}
        for k, v in metrics.items():
            if v.shape != values.shape:
                raise InputError(f"Landscape: metric {k!r} has shape {v.shape}, the values {values.shape}.")
        object.__setattr__(self, "metrics", metrics)
        mse = {str(k): np.asarray(v, dtype=np.float64) for k, v in (self.metrics_stderr or {}).items()}
        if mse and (list(mse) != list(metrics) or any(mse[k].shape != values.shape for k in mse)):
            raise InputError(
                f"Landscape: metrics_stderr must have one array of shape {values.shape} per metric "
                f"{list(metrics)}, got {[(k, v.shape) for k, v in mse.items()]}."
            )
        object.__setattr__(self, "metrics_stderr", mse)

    # ------------------------------------------------------------------ shape and flags
    @property
    def ndim(self) -> int:
        return self.values.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape

    @property
    def complete(self) -> bool:
        """True when every grid point was evaluated."""
        return self.evaluated is None

    @property
    def n_missing(self) -> int:
        return 0 if self.evaluated is None else int((~self.evaluated).sum())

    @property
    def n_nonfinite(self) -> int:
        """Number of evaluated points whose loss is NaN or inf."""
        bad = ~np.isfinite(self.values)
        if self.evaluated is not None:
            bad &= self.evaluated
        return int(bad.sum())

    @property
    def points(self) -> np.ndarray:
        """Coordinates of every grid point, shape (N, n), in the C order of ``values.ravel()``."""
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    def argmin(self) -> tuple[float, ...]:
        """Coordinates of the lowest finite loss."""
        v = np.where(np.isfinite(self.values), self.values, np.inf)
        idx = np.unravel_index(int(np.argmin(v)), self.shape)
        return tuple(float(a[i]) for a, i in zip(self.axes, idx, strict=True))

    # ------------------------------------------------------------------ topology
    def _finite_values(self) -> np.ndarray:
        from .errors import NonFiniteError

        if not self.complete:
            raise NonFiniteError(
                f"Landscape: {self.n_missing} of {self.values.size} points are not evaluated yet; finish the run "
                "(run the same command again to resume) before topological analysis."
            )
        return self.values

    def merge_tree(self, **kwargs: Any):
        """Merge tree of the values (see :func:`landform.topology.merge_tree`)."""
        from .topology import merge_tree

        return merge_tree(self._finite_values(), **kwargs)

    def persistence(self, **kwargs: Any) -> np.ndarray:
        """0-dimensional persistence pairs (see :func:`landform.topology.persistence`)."""
        from .topology import persistence

        return persistence(self._finite_values(), **kwargs)

    def smad(self, **kwargs: Any) -> float:
        """SMAD of the values (see :func:`landform.topology.smad`)."""
        from .topology import smad

        return smad(self._finite_values(), **kwargs)

    def profile(self, **kwargs: Any):
        """Topological landscape profile (see :func:`landform.topology.landscape_profile`)."""
        from .topology import landscape_profile

        return landscape_profile(self._finite_values(), **kwargs)

    # ------------------------------------------------------------------ io
    def save(self, path: str) -> None:
        """Write to the directory ``path`` atomically (see :mod:`landform.store` for the format)."""
        save_landscape(self, path)

    def summary(self) -> dict[str, Any]:
        """Key numbers as a JSON-serialisable dict."""
        finite = self.values[np.isfinite(self.values)]
        return {
            "shape": list(self.shape),
            "center_value": self.center_value,
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
            "argmin": list(self.argmin()) if finite.size else None,
            "n_nonfinite": self.n_nonfinite,
            "n_missing": self.n_missing,
        }

    def __repr__(self) -> str:
        extra = "" if self.complete else f", missing={self.n_missing}"
        if self.n_nonfinite:
            extra += f", nonfinite={self.n_nonfinite}"
        return f"Landscape(shape={self.shape}, directions={self.directions.get('kind', '?')!r}{extra})"



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
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=1, default=_json_default) + "\n").encode())


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


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


def _load_grid(path: Path) -> Landscape:
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
    path = Path(path)
    shape = tuple(int(s) for s in meta["shape"])
    chunk_points = int(meta["chunk_points"])
    flat = np.full((int(np.prod(shape)), m), np.nan)
    for i in sorted(done_chunks(path)):
        lo, hi = _chunk_range(shape, chunk_points, i)
        try:
            arr = np.load(path / "chunks" / f"m{i:08d}.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"{path}: metrics of chunk {i} are missing or corrupt ({exc}); delete c{i:08d}.npy to recompute "
                "that chunk."
            ) from exc
        if arr.shape != (hi - lo, m):
            raise StoreError(f"{path}: metrics of chunk {i} have shape {arr.shape}, expected {(hi - lo, m)}.")
        flat[lo:hi] = arr
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
    path = Path(path)
    shape = tuple(int(s) for s in meta["shape"])
    chunk_points = int(meta["chunk_points"])
    total = int(np.prod(shape))
    flat = np.full(total, np.nan)
    ev = np.zeros(total, dtype=bool)
    for i in sorted(done_chunks(path)):
        lo, hi = _chunk_range(shape, chunk_points, i)
        try:
            arr = np.load(path / "chunks" / f"c{i:08d}.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"{path}: chunk {i} is corrupt ({exc}); delete that file to recompute it."
            ) from exc
        if arr.shape != (hi - lo,):
            raise StoreError(f"{path}: chunk {i} has {arr.shape[0]} values, expected {hi - lo}; delete it.")
        flat[lo:hi] = arr
        ev[lo:hi] = True
    return flat.reshape(shape), ev.reshape(shape)




@dataclass(frozen=True, eq=False)
class ScatteredLandscape:
    """Loss values at scattered points of a subspace: ``values[i]`` is the loss at
    ``theta0 + sum_j points[i, j] * d_j``; ``metrics[name][i]`` an extra metric recorded there."""

    values: np.ndarray
    points: np.ndarray
    directions: dict[str, Any] = field(default_factory=dict)
    center_value: float = float("nan")
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        return int(self.points.shape[1])

    def merge_tree(self, k: int | None = None):
        from .topology import merge_tree

        return merge_tree(self.values, points=self.points, k=k)

    def persistence(self, k: int | None = None) -> np.ndarray:
        from .topology import persistence

        return persistence(self.values, points=self.points, k=k)

    def smad(self, k: int | None = None, **kwargs: Any) -> float:
        from .topology import smad

        return smad(self.values, points=self.points, k=k, **kwargs)

    def save(self, path: str) -> None:
        """Write an ``.npz`` (values, points, JSON metadata) atomically."""
        meta = {
            "format": SCATTERED_FORMAT,
            "schema_version": SCATTERED_SCHEMA_VERSION,
            "directions": self.directions,
            "center_value": self.center_value,
            "provenance": self.provenance,
            **({"metrics": list(self.metrics)} if self.metrics else {}),
        }
        extra = {"metrics": np.stack([self.metrics[k] for k in self.metrics])} if self.metrics else {}
        _write_npz(path, meta, values=self.values, points=self.points, **extra)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ScatteredLandscape:
        """Read a scattered landscape written by :meth:`save`."""
        meta, z = _read_npz(path, SCATTERED_FORMAT, SCATTERED_SCHEMA_VERSION, ("values", "points"))
        names = meta.get("metrics", [])
        metrics = dict(zip(names, z["metrics"], strict=True)) if names else {}
        return cls(z["values"], z["points"], meta.get("directions", {}), meta.get("center_value", float("nan")),
                   meta.get("provenance", {}), metrics)




def _check_path(path: Any, name: str) -> str | os.PathLike:
    """``path`` if it is a str or path-like, else an :class:`InputError` naming the argument ``name``."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"{name}: expected a file or folder path (str or pathlib.Path), got {path!r}.")
    return path


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
    path = Path(_check_path(path, "path"))
    if path.is_file():
        return ScatteredLandscape.load(path)
    return _load_grid(path)


# ---------------------------------------------------------------------------------------------- directions
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
    _write_npz(path, meta, vectors=np.asarray(d.vectors))


def load_directions(path: str | os.PathLike) -> SavedDirections:
    """Read directions written by :func:`save_directions` (or by landform 0.1's ``analyze``)."""
    meta, z = _read_npz(path, DIRECTIONS_FORMAT, DIRECTIONS_SCHEMA_VERSION, ("vectors",), legacy=True)
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


# ---------------------------------------------------------------------------------------------- density
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
    _write_npz(path, meta, **arrays)


def load_density(path: str | os.PathLike) -> SavedDensity:
    """Read a density written by :func:`save_density` (or by landform 0.1's ``analyze``)."""
    meta, z = _read_npz(path, DENSITY_FORMAT, DENSITY_SCHEMA_VERSION, ("grid", "density"), legacy=True)
    if z["grid"].shape != z["density"].shape:
        raise StoreError(f"{path}: grid and density differ in shape; delete the file to recompute.")
    return SavedDensity(z["grid"], z["density"], z.get("nodes"), z.get("weights"), meta.get("n_hvp"), meta.get("key"))


# ---------------------------------------------------------------------------------------------- topology
def _values_digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()


_TREE_ARRAYS = ("minima", "saddles", "nodes", "parent", "death", "arc_label", "basin_label")


def save_merge_tree(path: str | os.PathLike, tree: MergeTree) -> None:
    """Write a merge tree's arrays to ``path`` (``.npz``); its values are not stored, only their digest."""
    meta = {
        "format": TREE_FORMAT,
        "schema_version": TREE_SCHEMA_VERSION,
        "root": int(tree.root),
        "graph": tree.graph,
        "shape": list(tree.values.shape),
        "values_sha256": _values_digest(tree.values),
    }
    _write_npz(path, meta, **{k: getattr(tree, k) for k in _TREE_ARRAYS})


def load_merge_tree(path: str | os.PathLike, values: np.ndarray) -> MergeTree:
    """Read a merge tree written by :func:`save_merge_tree` for the landscape ``values`` it was built from.

    Raises :class:`StoreError` when ``values`` are not the ones the tree was built from.
    """
    from .topology import MergeTree

    meta, z = _read_npz(path, TREE_FORMAT, TREE_SCHEMA_VERSION, _TREE_ARRAYS)
    values = np.asarray(values, dtype=np.float64)
    if list(values.shape) != meta.get("shape") or _values_digest(values) != meta.get("values_sha256"):
        raise StoreError(f"{path}: built from other landscape values; delete it (`landform report` rebuilds it).")
    return MergeTree(values, **{k: z[k] for k in _TREE_ARRAYS}, root=int(meta["root"]), graph=str(meta["graph"]))


def load_pairs(path: str | os.PathLike) -> np.ndarray:
    """Persistence pairs saved as an (n, 2) float array (``persistence.npy``)."""
    path = Path(path)
    try:
        pairs = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable ({exc}); delete it to recompute.") from exc
    if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.issubdtype(pairs.dtype, np.floating):
        raise StoreError(f"{path}: expected an (n, 2) float array of persistence pairs, got {pairs.shape}.")
    return pairs


# ---------------------------------------------------------------------------------------------- run summary
@dataclass(frozen=True)
class TopologySummary:
    """Topology of a run's landscape (its merge tree on the grid's axis graph)."""

    smad: float
    n_minima: int | None = None
    n_saddles: int | None = None
    persistence_range: float | None = None
    value_range: float | None = None
    graph: str | None = None


@dataclass(frozen=True)
class HessianSummary:
    """Curvature numbers of a run (None: not computed)."""

    top_eigenvalues: tuple[float, ...] | None = None
    trace: float | None = None
    trace_stderr: float | None = None
    trace_n_hvp: int | None = None
    density_n_hvp: int | None = None


@dataclass(frozen=True)
class SharpnessSummary:
    """Average and worst-case L2 sharpness at radius ``rho``."""

    average: float
    worst: float
    rho: float


def _typed(cls: type, d: dict[str, Any] | None, where: str) -> Any:
    if d is None:
        return None
    if not isinstance(d, dict):
        raise StoreError(f"{where}: expected an object, got {type(d).__name__}.")
    names = {f.name for f in fields(cls)}
    kw = {k: v for k, v in d.items() if k in names}
    try:
        if cls is HessianSummary and kw.get("top_eigenvalues") is not None:
            ev = kw["top_eigenvalues"]
            if not isinstance(ev, list):
                raise TypeError(f"top_eigenvalues is {ev!r}, expected a list of numbers")
            kw["top_eigenvalues"] = tuple(float(x) for x in ev)
        for k, v in kw.items():
            want = next(f.type for f in fields(cls) if f.name == k)
            if v is not None and ("float" in want or "int" in want) and k != "top_eigenvalues":
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise TypeError(f"{k} is {v!r}, expected a number")
        return cls(**kw)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{where}: {exc}; rerun the same `landform analyze` command to rewrite it.") from exc


def _plain(obj: Any) -> dict[str, Any] | None:
    if obj is None:
        return None
    d = {f.name: getattr(obj, f.name) for f in fields(obj)}
    if isinstance(d.get("top_eigenvalues"), tuple):
        d["top_eigenvalues"] = list(d["top_eigenvalues"])
    return {k: v for k, v in d.items() if v is not None} if isinstance(obj, HessianSummary) else d


_CORE_KEYS = (
    "format", "schema_version", "landform_version", "config", "recipe", "landscape", "directions", "span",
    "resolution", "topology", "hessian", "sharpness", "timings", "report", "stages",
)  # fmt: skip


@dataclass(frozen=True)
class RunResult:
    """Everything one run of the main job (:func:`landform.run.analyze`) produced, as saved in its folder.

    The numbers are attributes; the arrays are read from the folder on demand (:meth:`landscape`,
    :meth:`pairs`, :meth:`merge_tree`, :meth:`density`). ``extras`` holds the sections added by extra stages
    (for example ``robust_smad``), ``stages`` the identity of each cached stage's inputs.
    """

    path: Path
    schema_version: int = RUN_SCHEMA_VERSION
    landform_version: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    landscape_summary: dict[str, Any] = field(default_factory=dict)
    directions: dict[str, Any] = field(default_factory=dict)
    span: Any = None
    resolution: Any = None
    topology: TopologySummary | None = None
    hessian: HessianSummary = field(default_factory=HessianSummary)
    sharpness: SharpnessSummary | None = None
    timings: dict[str, float] = field(default_factory=dict)
    report: str | None = None
    stages: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ json
    def to_dict(self) -> dict[str, Any]:
        """The ``summary.json`` document (the keys of landform 0.1's summary, plus format and version)."""
        d = {
            "format": RUN_FORMAT,
            "schema_version": RUN_SCHEMA_VERSION,
            "landform_version": self.landform_version,
            "config": self.config,
            "recipe": self.recipe,
            "landscape": self.landscape_summary,
            "directions": self.directions,
            "span": self.span,
            "resolution": self.resolution,
            "topology": _plain(self.topology),
            "hessian": _plain(self.hessian),
            "sharpness": _plain(self.sharpness),
            "timings": self.timings,
            "report": self.report,
            "stages": self.stages,
        }
        d.update(self.extras)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: str | os.PathLike) -> RunResult:
        """Read a ``summary.json`` document; version 1 (no ``format`` key) is landform 0.1's summary."""
        where = Path(path) / "summary.json"
        if not isinstance(d, dict):
            raise StoreError(
                f"{where}: expected a JSON object, got {type(d).__name__}. To convert the folder, run the same "
                "`landform analyze` command again with --out pointing at it (the saved landscape is reused)."
            )
        version = _check_format(d, RUN_FORMAT, RUN_SCHEMA_VERSION, where, legacy=True) or 1
        for key in ("config", "recipe", "directions", "timings", "stages"):
            if d.get(key) is not None and not isinstance(d[key], dict):
                raise StoreError(
                    f"{where}: its {key!r} section is {type(d[key]).__name__}, expected an object; the file is corrupt. "
                    "Run the same `landform analyze` command again to rewrite it."
                )
        if not isinstance(d.get("landscape", {}), dict):
            raise StoreError(
                f"{where}: its 'landscape' section is not an object, so this is not a landform run summary this "
                "version can read. To convert the folder, run the same `landform analyze` command again with --out "
                "pointing at it: the saved landscape and directions are reused and summary.json is rewritten."
            )
        return cls(
            path=Path(path),
            schema_version=version,
            landform_version=d.get("landform_version"),
            config=d.get("config") or {},
            recipe=d.get("recipe") or {},
            landscape_summary=d.get("landscape") or {},
            directions=d.get("directions") or {},
            span=d.get("span"),
            resolution=d.get("resolution"),
            topology=_typed(TopologySummary, d.get("topology"), f"{where} topology"),
            hessian=_typed(HessianSummary, d.get("hessian") or {}, f"{where} hessian"),
            sharpness=_typed(SharpnessSummary, d.get("sharpness"), f"{where} sharpness"),
            timings=d.get("timings") or {},
            report=d.get("report"),
            stages=d.get("stages") or {},
            extras={k: v for k, v in d.items() if k not in _CORE_KEYS},
        )

    def save(self) -> None:
        """Write ``summary.json`` into :attr:`path` atomically."""
        atomic_write_json(self.path / "summary.json", self.to_dict())

    def replace(self, **changes: Any) -> RunResult:
        return replace(self, **changes)

    # ------------------------------------------------------------------ arrays, read on demand
    @property
    def name(self) -> str:
        return self.path.name

    def landscape(self) -> Landscape:
        """The run's grid landscape (``landscape/``)."""
        return _load_grid(self.path / "landscape")

    def pairs(self) -> np.ndarray | None:
        """The persistence pairs (``persistence.npy``); None when topology was skipped."""
        p = self.path / "persistence.npy"
        return load_pairs(p) if p.exists() else None

    def merge_tree(self, landscape: Landscape | None = None) -> MergeTree | None:
        """The saved merge tree (``merge_tree.npz``); None when topology was skipped or the run is unfinished.

        A folder of landform 0.1 has no saved tree: it is computed here once from the landscape.
        """
        ls = landscape if landscape is not None else self.landscape()
        if not ls.complete or ls.n_nonfinite:
            return None
        p = self.path / "merge_tree.npz"
        if p.exists():
            return load_merge_tree(p, ls.values)
        from .topology import merge_tree

        return merge_tree(ls.values)

    def density(self) -> SavedDensity | None:
        """The saved spectral density (``density.npz``), or None."""
        p = self.path / "density.npz"
        return load_density(p) if p.exists() else None


def load_run(path: str | os.PathLike, *, allow_unfinished: bool = False) -> RunResult:
    """Open a run folder written by ``landform analyze`` / :func:`landform.run.analyze` (no torch needed).

    Parameters
    ----------
    path : path
        The run folder.
    allow_unfinished : bool
        Accept a folder with a landscape store but no ``summary.json`` yet (an interrupted run); its
        summary fields are empty.

    Examples
    --------
    >>> import tempfile, json, numpy as np
    >>> d = Path(tempfile.mkdtemp())
    >>> Landscape(np.zeros((3, 3)), (np.arange(3.0),) * 2).save(d / "landscape")
    >>> _ = (d / "summary.json").write_text(json.dumps({"landscape": {"shape": [3, 3]}, "topology": None}))
    >>> r = load_run(d)
    >>> r.schema_version, r.landscape().shape
    (1, (3, 3))
    """
    path = Path(_check_path(path, "path"))
    f = path / "summary.json"
    if not f.exists():
        if allow_unfinished and (path / "landscape" / META).exists():
            return RunResult(path=path)
        raise StoreError(f"{path}: no summary.json; is it a finished landform run folder?")
    try:
        d = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"{f}: unreadable or corrupt ({exc}); run the same `landform analyze` command again.") from exc
    return RunResult.from_dict(d, path)

"""Atomic file writes and the versioned, schema-checked ``.npz`` format every saved array result uses. numpy only.

Package-internal: :mod:`landform.results` (landscapes, directions, density, merge trees) and
:mod:`landform.projection` (trajectories) write and read their files through these helpers, so every format
names itself (``"format"``), carries a ``schema_version``, and is refused the same way when it is foreign,
corrupt or newer than this landform.

An ``.npz`` here holds the named arrays plus one ``meta`` entry: a JSON document (a 0-d string array, no
pickles) with at least ``format`` and ``schema_version``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import StoreError

__all__ = [
    "atomic_file",
    "atomic_write_bytes",
    "atomic_save_npy",
    "atomic_write_json",
    "json_default",
    "check_format",
    "write_npz",
    "read_npz",
]


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[IO[bytes]]:
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
    with atomic_file(path) as fh:
        fh.write(data)


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` to ``path`` atomically."""
    with atomic_file(path) as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for numpy arrays and scalars and paths."""
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=1, default=json_default) + "\n").encode())


def check_format(meta: dict[str, Any], fmt: str, version: int, where: Any, *, legacy: bool = False) -> int:
    """The schema version of ``meta`` after checking that it names ``fmt`` at a version this landform reads.

    ``legacy`` accepts a document without a ``format`` key (a file of landform 0.1) and returns 0 for it.

    Examples
    --------
    >>> check_format({"format": "landform.x", "schema_version": 1}, "landform.x", 2, "f.npz")
    1
    >>> check_format({"format": "landform.x", "schema_version": 3}, "landform.x", 2, "f.npz")
    Traceback (most recent call last):
    ...
    landform.errors.StoreError: f.npz: schema version 3 is newer than this landform understands (2); upgrade landform.
    """
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


def write_npz(path: str | os.PathLike, meta: dict[str, Any], **arrays: np.ndarray) -> None:
    """Write ``arrays`` and the JSON document ``meta`` (which names its format and version) to ``path``
    atomically.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.npz"
    >>> write_npz(p, {"format": "landform.x", "schema_version": 1}, a=np.arange(3))
    >>> meta, arrays = read_npz(p, "landform.x", 1, ("a",))
    >>> meta["schema_version"], arrays["a"].tolist()
    (1, [0, 1, 2])
    """
    buf = io.BytesIO()
    np.savez(buf, meta=np.asarray(json.dumps(meta, default=json_default)), **arrays)
    atomic_write_bytes(path, buf.getvalue())


def read_npz(
    path: str | os.PathLike,
    fmt: str,
    version: int,
    keys: tuple[str, ...],
    *,
    legacy: bool = False,
    what: str | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of an ``.npz`` written by :func:`write_npz`, checked: its format is ``fmt`` at a version
    up to ``version`` and it holds the arrays ``keys``. ``legacy`` accepts files without a format tag (landform
    0.1's command line); ``what`` names the kind of file in the message for a file that is not one.
    """
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
        if not isinstance(meta, dict):
            raise StoreError(f"{path}: its metadata is a {type(meta).__name__}, not an object; the file is corrupt.")
    elif what is not None and not legacy:
        raise StoreError(f"{path}: not a readable landform {what} (it has no metadata).")
    check_format(meta, fmt, version, path, legacy=legacy)
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise StoreError(f"{path}: arrays {missing} are missing; delete the file to recompute it.")
    return meta, arrays

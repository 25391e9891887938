"""The :class:`Trajectory` result: checkpoints projected onto a subspace, with their true losses.

numpy only (no torch), so plots and the report read a saved trajectory on any machine. The file format is
one ``.npz`` (no pickles) with ``format = "landform.trajectory"`` and a ``schema_version``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._npz import read_npz, write_npz
from .errors import InputError, StoreError

__all__ = ["Trajectory", "load_trajectory", "TRAJECTORY_SCHEMA_VERSION"]

TRAJECTORY_SCHEMA_VERSION = 1
_FORMAT = "landform.trajectory"
_ARRAYS = ("coords", "loss", "projected_loss", "off_plane", "distance", "steps")


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Checkpoints seen in a subspace ``theta0 + sum_k c_k d_k``.

    Attributes
    ----------
    coords : numpy.ndarray, shape (K, n)
        Least-squares coordinates of each checkpoint: ``argmin_c || theta_i - theta0 - c @ D ||`` (exact
        orthogonal projection for orthonormal directions).
    loss : numpy.ndarray, shape (K,)
        Each checkpoint's true loss: the checkpoint model as it is (its own buffers) on the objective's data.
    projected_loss : numpy.ndarray, shape (K,)
        The objective's loss at the projected point ``theta0 + coords_i @ D`` (the objective's buffers): the
        value the surface shows there.
    off_plane : numpy.ndarray, shape (K,)
        ``|| theta_i - theta0 - coords_i @ D ||``: the distance from the subspace, what the picture hides.
    distance : numpy.ndarray, shape (K,)
        ``|| theta_i - theta0 ||``, so ``off_plane / distance`` is the hidden fraction.
    names : tuple of str
    steps : numpy.ndarray of float, shape (K,)
        Step number of each checkpoint (NaN when unknown).
    directions : dict
        Metadata of the directions (kind, fingerprint, explained variance ...).
    center_value : float
        Loss at ``theta0``.
    """

    coords: np.ndarray
    loss: np.ndarray
    projected_loss: np.ndarray
    off_plane: np.ndarray
    distance: np.ndarray
    names: tuple[str, ...]
    steps: np.ndarray
    directions: dict[str, Any] = field(default_factory=dict)
    center_value: float = float("nan")

    def __post_init__(self) -> None:
        coords = np.asarray(self.coords, dtype=np.float64)
        if coords.ndim != 2:
            raise InputError(f"Trajectory: coords must be (K, n), got shape {coords.shape}.")
        k = coords.shape[0]
        object.__setattr__(self, "coords", coords)
        for name in ("loss", "projected_loss", "off_plane", "distance", "steps"):
            arr = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if arr.shape != (k,):
                raise InputError(f"Trajectory: {name} must have one entry per checkpoint ({k}), got {arr.shape}.")
            object.__setattr__(self, name, arr)
        names = tuple(str(n) for n in self.names)
        if len(names) != k:
            raise InputError(f"Trajectory: {len(names)} names for {k} checkpoints.")
        object.__setattr__(self, "names", names)

    @property
    def n_checkpoints(self) -> int:
        return int(self.coords.shape[0])

    @property
    def n(self) -> int:
        return int(self.coords.shape[1])

    @property
    def hidden_fraction(self) -> np.ndarray:
        """``off_plane / distance`` per checkpoint (NaN at the centre itself)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.distance > 0, self.off_plane / np.where(self.distance > 0, self.distance, 1), np.nan)

    @property
    def x(self) -> np.ndarray:
        """The step numbers where known for every checkpoint, else the checkpoint index."""
        return self.steps if np.all(np.isfinite(self.steps)) else np.arange(self.n_checkpoints, dtype=float)

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable table of the trajectory."""
        return {
            "names": list(self.names),
            "steps": [None if not np.isfinite(s) else float(s) for s in self.steps],
            "coords": self.coords.tolist(),
            "loss": self.loss.tolist(),
            "projected_loss": self.projected_loss.tolist(),
            "off_plane": self.off_plane.tolist(),
            "distance": self.distance.tolist(),
            "center_value": self.center_value,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write one ``.npz`` atomically (no pickles; :func:`load_trajectory` reads it)."""
        meta = {
            "format": _FORMAT,
            "schema_version": TRAJECTORY_SCHEMA_VERSION,
            "names": list(self.names),
            "directions": self.directions,
            "center_value": self.center_value,
        }
        arrays = {k: getattr(self, k) for k in _ARRAYS}
        write_npz(path, meta, **arrays)

    def __repr__(self) -> str:
        return f"Trajectory(checkpoints={self.n_checkpoints}, n={self.n}, directions={self.directions.get('kind')!r})"


def load_trajectory(path: str | os.PathLike) -> Trajectory:
    """Read a trajectory written by :meth:`Trajectory.save`.

    Examples
    --------
    >>> import tempfile, os
    >>> t = Trajectory(np.zeros((2, 2)), [1.0, 0.5], [1.0, 0.5], [0.0, 0.0], [1.0, 0.0], ("a", "b"), [0, 1])
    >>> p = os.path.join(tempfile.mkdtemp(), "t.npz"); t.save(p)
    >>> load_trajectory(p).loss.tolist()
    [1.0, 0.5]
    """
    meta, z = read_npz(path, _FORMAT, TRAJECTORY_SCHEMA_VERSION, _ARRAYS, what="trajectory")
    try:
        return _from_saved(meta, z)
    except InputError as exc:  # arrays of inconsistent lengths
        raise StoreError(f"{path}: {exc} The file is corrupt; write it again.") from exc


def _from_saved(meta: dict[str, Any], z: dict[str, np.ndarray]) -> Trajectory:
    return Trajectory(
        coords=z["coords"],
        loss=z["loss"],
        projected_loss=z["projected_loss"],
        off_plane=z["off_plane"],
        distance=z["distance"],
        names=tuple(meta.get("names", ())),
        steps=z["steps"],
        directions=meta.get("directions", {}),
        center_value=float(meta.get("center_value", float("nan"))),
    )

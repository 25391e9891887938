"""The in-memory landscape results: :class:`Landscape` (a grid) and :class:`ScatteredLandscape`. numpy only.

A grid landscape is saved as a directory (:mod:`landform.results.grid`), a scattered one as a versioned
``.npz`` (:meth:`ScatteredLandscape.save`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._npz import read_npz, write_npz
from ..errors import InputError

__all__ = ["Landscape", "ScatteredLandscape", "SCATTERED_FORMAT", "SCATTERED_SCHEMA_VERSION"]

SCATTERED_FORMAT, SCATTERED_SCHEMA_VERSION = "landform.scattered", 1


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
        from ..errors import NonFiniteError

        if not self.complete:
            raise NonFiniteError(
                f"Landscape: {self.n_missing} of {self.values.size} points are not evaluated yet; finish the run "
                "(run the same command again to resume) before topological analysis."
            )
        return self.values

    def merge_tree(self, **kwargs: Any):
        """Merge tree of the values (see :func:`landform.topology.merge_tree`)."""
        from ..topology import merge_tree

        return merge_tree(self._finite_values(), **kwargs)

    def persistence(self, **kwargs: Any) -> np.ndarray:
        """0-dimensional persistence pairs (see :func:`landform.topology.persistence`)."""
        from ..topology import persistence

        return persistence(self._finite_values(), **kwargs)

    def smad(self, **kwargs: Any) -> float:
        """SMAD of the values (see :func:`landform.topology.smad`)."""
        from ..topology import smad

        return smad(self._finite_values(), **kwargs)

    def profile(self, **kwargs: Any):
        """Topological landscape profile (see :func:`landform.topology.landscape_profile`)."""
        from ..topology import landscape_profile

        return landscape_profile(self._finite_values(), **kwargs)

    # ------------------------------------------------------------------ io
    def save(self, path: str | os.PathLike) -> None:
        """Write to the directory ``path`` atomically (see :mod:`landform.store` for the format)."""
        from .grid import save_landscape

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
        from ..topology import merge_tree

        return merge_tree(self.values, points=self.points, k=k)

    def persistence(self, k: int | None = None) -> np.ndarray:
        from ..topology import persistence

        return persistence(self.values, points=self.points, k=k)

    def smad(self, k: int | None = None, **kwargs: Any) -> float:
        from ..topology import smad

        return smad(self.values, points=self.points, k=k, **kwargs)

    def save(self, path: str | os.PathLike) -> None:
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
        write_npz(path, meta, values=self.values, points=self.points, **extra)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ScatteredLandscape:
        """Read a scattered landscape written by :meth:`save`."""
        meta, z = read_npz(path, SCATTERED_FORMAT, SCATTERED_SCHEMA_VERSION, ("values", "points"))
        names = meta.get("metrics", [])
        metrics = dict(zip(names, z["metrics"], strict=True)) if names else {}
        return cls(z["values"], z["points"], meta.get("directions", {}), meta.get("center_value", float("nan")),
                   meta.get("provenance", {}), metrics)

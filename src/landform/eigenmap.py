"""The :class:`EigenvalueMap` result: extreme curvature eigenvalues on a coarse grid of a landscape's subspace.

numpy only (a saved map loads and plots without torch). It is computed by
:func:`landform.curvature.eigenvalue_map`.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import StoreError

__all__ = ["EigenvalueMap", "load_eigenvalue_map"]

_FORMAT = "landform.eigenvalue_map"


@dataclass(frozen=True, eq=False)
class EigenvalueMap:
    """Extreme eigenvalues of the curvature at every point of a grid.

    Attributes
    ----------
    axes : tuple of numpy.ndarray
        The grid's coordinates, one array per direction (as in :class:`~landform.Landscape`).
    values : dict of str to numpy.ndarray
        ``values["LA"]`` the largest eigenvalue at every grid point, ``values["SA"]`` the smallest (when asked
        for); each of shape ``tuple(len(a) for a in axes)``.
    residuals : dict of str to numpy.ndarray
        The measured relative residual of each eigenpair.
    n_hvp : int
        Curvature products spent in all (residual checks included).
    curvature : str
        ``"hessian"``, ``"ggn"`` or ``"ef"``.
    directions : dict
        The directions' metadata.
    provenance : dict
    """

    axes: tuple[np.ndarray, ...]
    values: dict[str, np.ndarray]
    residuals: dict[str, np.ndarray]
    n_hvp: int
    curvature: str = "hessian"
    directions: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a) for a in self.axes)

    def save(self, path: str | os.PathLike) -> None:
        """Write an ``.npz`` (arrays and JSON metadata) atomically."""
        from .store import atomic_write_bytes

        meta = {
            "format": _FORMAT,
            "schema_version": 1,
            "which": list(self.values),
            "n_hvp": int(self.n_hvp),
            "curvature": self.curvature,
            "directions": self.directions,
            "provenance": self.provenance,
        }
        arrays = {f"axis{i}": a for i, a in enumerate(self.axes)}
        arrays.update({f"value_{w}": v for w, v in self.values.items()})
        arrays.update({f"residual_{w}": v for w, v in self.residuals.items()})
        buf = io.BytesIO()
        np.savez(buf, meta=np.asarray(json.dumps(meta, default=str)), **arrays)
        atomic_write_bytes(path, buf.getvalue())


def load_eigenvalue_map(path: str | os.PathLike) -> EigenvalueMap:
    """Load a map written by :meth:`EigenvalueMap.save`."""
    try:
        z = np.load(path, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError) as exc:
        raise StoreError(f"{path}: not a readable eigenvalue map ({exc}).") from exc
    if meta.get("format") != _FORMAT:
        raise StoreError(f"{path}: format {meta.get('format')!r}, expected {_FORMAT!r}.")
    n = sum(1 for k in z.files if k.startswith("axis"))
    return EigenvalueMap(
        axes=tuple(z[f"axis{i}"] for i in range(n)),
        values={w: z[f"value_{w}"] for w in meta["which"]},
        residuals={w: z[f"residual_{w}"] for w in meta["which"]},
        n_hvp=int(meta["n_hvp"]),
        curvature=meta.get("curvature", "hessian"),
        directions=meta.get("directions", {}),
        provenance=meta.get("provenance", {}),
    )

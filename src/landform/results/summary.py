"""The run summary (``summary.json``): :class:`RunResult` and its typed sections, and :func:`load_run`. numpy only."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._npz import atomic_write_json, check_format
from .._validation import check_path
from ..errors import StoreError
from .density import SavedDensity, load_density
from .grid import META, load_grid
from .landscape import Landscape
from .topology import load_merge_tree, load_pairs

if TYPE_CHECKING:
    from ..topology import MergeTree

__all__ = [
    "TopologySummary",
    "HessianSummary",
    "SharpnessSummary",
    "RunResult",
    "load_run",
    "typed_section",
    "RUN_FORMAT",
    "RUN_SCHEMA_VERSION",
]

RUN_FORMAT, RUN_SCHEMA_VERSION = "landform.run", 2  # version 1: summary.json before the format was named


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


def typed_section(cls: type, d: dict[str, Any] | None, where: str) -> Any:
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
        version = check_format(d, RUN_FORMAT, RUN_SCHEMA_VERSION, where, legacy=True) or 1
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
            topology=typed_section(TopologySummary, d.get("topology"), f"{where} topology"),
            hessian=typed_section(HessianSummary, d.get("hessian") or {}, f"{where} hessian"),
            sharpness=typed_section(SharpnessSummary, d.get("sharpness"), f"{where} sharpness"),
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
        return load_grid(self.path / "landscape")

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
        from ..topology import merge_tree

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
    path = Path(check_path("path", path))
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

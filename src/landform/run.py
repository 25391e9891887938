"""The main job as one library call: :func:`analyze` an objective with a :class:`RunConfig` into a run folder.

``landform analyze``, the examples and anything else that wants "the usual analysis" call :func:`analyze`;
:func:`load_run` (re-exported from :mod:`landform.results`, no torch) opens the folder it wrote and
:func:`compare` puts several runs side by side.

The job, in order::

    directions      (cached in directions.npz, keyed on the objective and the request)
    grid landscape  (landscape/, resumable chunk store)
    STAGES          topology -> trace -> density -> sharpness, then any ``extra_stages``
    report          (report.html, figures/) when ``config.report``
    summary.json    written once, complete, as the last step

A :class:`Stage` is a function of the :class:`RunContext` returning sections of the summary. A stage with
``settings`` is cached: a rerun reuses its saved values when the objective's identity
(:func:`objective_identity`) and the settings are unchanged, and recomputes them otherwise. To add a stage,
append a :class:`Stage` to :data:`STAGES` (or pass ``extra_stages=``) and, if it needs configuration, add a
field to :class:`RunConfig` with a default that keeps today's behaviour.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._chain import DIRECTION_KINDS
from .errors import InputError, StoreError
from .results import (
    HessianSummary,
    RunResult,
    SavedDensity,
    SavedDirections,
    SharpnessSummary,
    TopologySummary,
    atomic_save_npy,
    load_density,
    load_directions,
    load_pairs,
    load_run,
    save_density,
    save_directions,
    save_merge_tree,
)

if TYPE_CHECKING:
    from .directions import Directions
    from .objective import Objective
    from .results import Landscape

__all__ = [
    "RunConfig",
    "RunContext",
    "Stage",
    "STAGES",
    "analyze",
    "load_run",
    "compare",
    "Comparison",
    "objective_identity",
]

#: RunConfig fields without a ``--field-name`` flag of ``landform analyze`` (or with another one).
_FLAGS = {"report": "--no-report", "progress": "--quiet", "density_steps": None, "lanczos_tol": None, "command": None}


def _flag(name: str) -> str:
    """`` (--flag)`` of the ``landform analyze`` option that sets the RunConfig field ``name``, or ``""``."""
    flag = _FLAGS.get(name, "--" + name.replace("_", "-"))
    return f" ({flag})" if flag else ""


# ---------------------------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class RunConfig:
    """Settings of the main job; every field has the default of ``landform analyze``.

    Attributes
    ----------
    dims : int
        Number of directions.
    resolution, span : int / float, or one per axis
        Points per axis and half-width per axis (or ``(lo, hi)`` pairs), as :func:`landform.grid_landscape`;
        ``span="auto"`` chooses each axis' span from the curvature (:func:`landform.auto_span` with ``rise``).
    span_units : {"absolute", "relative"}
        ``"relative"``: spans are fractions of ``||theta0||`` (the paper's units; see :mod:`landform.geometry`).
    normalization : {None, "layer", "numel"}
        Per-tensor rescaling of hessian/random/file directions (``"numel"``: landscaper 1.3.1's release; with
        ``span_units="relative"`` the paper's geometry). ``"filter"`` directions are filter-normalised already.
    rise : float
        Loss rise of the quadratic model at each axis' edge when ``span="auto"``.
    directions : str
        ``"hessian"`` (top eigenvectors), ``"random"``, ``"filter"`` (filter-normalised random) or a path to a
        ``.npy``/``.pt`` array of shape (dims, P).
    seed : int
        Seed of the directions and of every stochastic estimate.
    chunk_points : int
        Points per stored chunk (the most an interrupted run loses).
    parallel : {"grid", "data"}
        Under torchrun: ranks split the grid points or the data.
    lanczos_tol : float
        Tolerance of the Lanczos solver for Hessian directions.
    trace_hvp : int
        HVP budget of the Hutch++ trace (0 skips it).
    density_probes, density_steps : int
        Probes and Lanczos steps of the spectral density (0 probes skips it).
    sharpness_rho : float
        Radius of the average and worst-case L2 sharpness (0 skips it).
    report : bool
        Write figures and report.html.
    progress : bool
        Progress bars.
    command : str or None
        The command line that started the run (provenance only).
    per_layer : bool
        Each layer's top Hessian eigenvalue and trace (:func:`landform.curvature.layer_curvature`), in the
        summary's ``per_layer`` section and the report.
    metrics : tuple of str
        Built-in per-point metrics recorded with the loss (``"accuracy"``), and the basins' statistics of each.
    eigenvalue_map : int
        Points per axis of a map of the top Hessian eigenvalue over a coarse sub-grid of the landscape's own
        grid points (:func:`landform.curvature.eigenvalue_map_axes`; odd values include the centre); 0 skips it.
        One Lanczos run (at most 60 HVPs) per point and eigenvalue.
    eigenvalue_map_smallest : bool
        The map also holds the smallest eigenvalue (twice the cost).
    """

    dims: int = 2
    resolution: int | tuple[int, ...] = 41
    span: Any = 1.0
    directions: str = "hessian"
    seed: int = 0
    chunk_points: int = 256
    parallel: str = "grid"
    lanczos_tol: float = 1e-5
    trace_hvp: int = 30
    density_probes: int = 2
    density_steps: int = 40
    sharpness_rho: float = 0.05
    report: bool = True
    progress: bool = True
    command: str | None = None
    progressive: bool = False
    rtol: float = 0.05
    shards: int = 16
    compile: str = "off"
    span_units: str = "absolute"
    normalization: str | None = None
    rise: float = 1.0
    per_layer: bool = False
    metrics: tuple[str, ...] = ()
    eigenvalue_map: int = 0
    eigenvalue_map_smallest: bool = False
    # New fields go here (with a default that keeps the behaviour above), e.g. span_units, progressive, metrics.

    def __post_init__(self) -> None:
        if isinstance(self.metrics, (list, str)):
            object.__setattr__(self, "metrics", (self.metrics,) if isinstance(self.metrics, str) else tuple(self.metrics))
        for name in ("resolution", "span"):
            v = getattr(self, name)
            if isinstance(v, list):
                object.__setattr__(self, name, tuple(tuple(x) if isinstance(x, list) else x for x in v))

    def validate(self) -> RunConfig:
        """Check every field; raise :class:`InputError` naming the first bad one (and its ``landform analyze``
        flag). Returns ``self``. ``dims`` against the parameter count is checked by :func:`analyze`."""

        def count(name: str, low: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise InputError(f"{name}{_flag(name)}: expected an integer >= {low}, got {v!r}.")

        count("dims", 1)
        count("chunk_points", 1)
        count("trace_hvp", 0)
        if 0 < self.trace_hvp < 3:
            raise InputError(
                f"trace_hvp{_flag('trace_hvp')}: Hutch++ needs at least 3 HVPs, got {self.trace_hvp}; "
                "pass 3 or more, or 0 to skip the trace."
            )
        count("density_probes", 0)
        count("density_steps", 1)
        count("seed", 0)
        count("shards", 2)  # refused here, not after the recipe and the directions stage
        r = self.rtol
        if isinstance(r, bool) or not isinstance(r, (int, float, np.integer, np.floating)) or not np.isfinite(r) or r < 0:
            raise InputError(f"rtol{_flag('rtol')}: expected a finite number >= 0 (0 means all the data), got {r!r}.")
        count("eigenvalue_map", 0)
        if self.eigenvalue_map == 1:
            raise InputError(
                f"eigenvalue_map{_flag('eigenvalue_map')}: a map needs at least 2 points per axis, got 1; pass 2 or "
                "more (5 is a good start), or 0 to skip it (the directions stage gives the centre's eigenvalues)."
            )
        for name in ("report", "progress", "progressive", "eigenvalue_map_smallest"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise InputError(f"{name}{_flag(name)}: expected True or False, got {getattr(self, name)!r}.")
        if self.compile not in ("off", "on", "auto"):
            raise InputError(f"compile{_flag('compile')}: expected 'off', 'on' or 'auto', got {self.compile!r}.")
        from .curvature_run import builtin_metrics

        builtin_metrics(self.metrics)
        if self.parallel not in ("grid", "data"):
            raise InputError(f"parallel{_flag('parallel')}: expected 'grid' or 'data', got {self.parallel!r}.")
        if not isinstance(self.directions, (str, Path)):
            raise InputError(
                f"directions{_flag('directions')}: expected {', '.join(DIRECTION_KINDS)} or a file path, "
                f"got {self.directions!r}."
            )
        if str(self.directions) not in DIRECTION_KINDS and not Path(self.directions).is_file():
            raise InputError(
                f"directions{_flag('directions')}: expected hessian, random, filter or a .npy/.pt file (n, P), "
                f"got {self.directions!r}."
            )
        from .directions import NORMALIZATIONS
        from .geometry import SPAN_UNITS

        if self.span_units not in SPAN_UNITS:
            raise InputError(f"span_units: expected 'absolute' or 'relative', got {self.span_units!r}.")
        if self.span == "auto" and self.span_units != "absolute":
            raise InputError(
                f"span_units{_flag('span_units')}: span 'auto' is chosen from the curvature as a coefficient span; "
                "relative units do not apply to it. Drop the span units, or give the span as a fraction."
            )
        if self.normalization not in NORMALIZATIONS or self.normalization == "filter":
            raise InputError(
                f"normalization: expected None, 'layer' or 'numel' (use directions='filter' for Li et al.'s), got "
                f"{self.normalization!r}."
            )
        if self.normalization is not None and str(self.directions) == "filter":
            raise InputError("normalization: directions='filter' are filter-normalised already; drop normalization.")
        if isinstance(self.span, str) and self.span != "auto":
            raise InputError(f"span: expected numbers, (lo, hi) pairs or 'auto', got {self.span!r}.")
        if self.span != "auto":  # a bad span is refused here, not after the recipe and the directions stage
            from .evaluate import grid_axes

            grid_axes(self.span, self.resolution, self.dims)
        r = self.rise
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not np.isfinite(r) or r <= 0:
            raise InputError(f"rise: expected a finite loss rise > 0, got {r!r}.")
        for name, low in (("sharpness_rho", "finite number >= 0"), ("lanczos_tol", "finite number > 0")):
            v = getattr(self, name)
            bad = isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not np.isfinite(v) or v < 0
            if bad or (name == "lanczos_tol" and v == 0):
                raise InputError(f"{name}{_flag(name)}: expected a {low}, got {v!r}.")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["metrics"] = list(self.metrics)  # as JSON gives it back
        return d


# ---------------------------------------------------------------------------------------------- identity
def objective_identity(objective: Objective) -> str:
    """A hex digest that changes when anything the objective computes from changes.

    The digest of :meth:`Objective.fingerprint` (:mod:`landform.fingerprint`: every batch of data, the loss
    function's code and closure, weights, buffers and model). The run's caches (directions, trace, density,
    sharpness) are keyed on it, so a stored result is never reused for another objective.
    """
    return str(objective.fingerprint())


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------- context, stages
@dataclass
class RunContext:
    """What a stage sees: the objective, the configuration, the run folder, and what earlier steps made."""

    objective: Objective
    config: RunConfig
    out: Path
    log: Callable[..., None]
    rank: int = 0
    world: int = 1
    directions: Directions | None = None
    landscape: Landscape | None = None
    previous: RunResult | None = None
    timings: dict[str, float] = field(default_factory=dict)
    _identity: str | None = None

    @property
    def data_parallel(self) -> bool:
        return bool(getattr(self.objective, "data_parallel", False)) and self.world > 1

    @property
    def identity(self) -> str:
        """:func:`objective_identity`, computed once (over every rank's shard under data-parallel torchrun)."""
        if self._identity is None:
            # the loss at theta0 (bit for bit) is the last guard: it catches what a hash of code and state can miss
            # (a loss module's hyperparameters, a global the loss reads, a model attribute outside its state)
            centre = float(self.objective.loss())
            ident = _key(objective_identity(self.objective), centre.hex())
            if self.data_parallel:
                import torch.distributed as dist

                every: list[Any] = [None] * self.world
                dist.all_gather_object(every, ident)
                ident = _key(every)
            self._identity = ident
        return self._identity


@dataclass(frozen=True)
class Stage:
    """One step after the landscape.

    Attributes
    ----------
    name : str
        Its key in ``summary.json``'s ``stages`` and ``timings`` (``<name>_s``).
    compute : callable
        ``compute(ctx) -> {section: {key: value}}``; the sections are merged into the summary (``topology``,
        ``hessian``, ``sharpness`` are typed in :class:`~landform.results.RunResult`; any other section lands
        in ``RunResult.extras``). A section given as None is recorded as None.
    enabled : callable
        ``enabled(config) -> bool``.
    settings : callable or None
        ``settings(config) -> dict``: when given, the stage is cached: a rerun reuses the saved sections if the
        objective's identity and these settings are unchanged (and ``valid(ctx, key)`` holds).
    valid : callable or None
        ``valid(ctx, key) -> bool``: extra check that the files a cached stage wrote still belong to ``key``.
    collective : bool
        Under data-parallel torchrun every rank runs it (its HVPs all-reduce); otherwise rank 0 alone.
    """

    name: str
    compute: Callable[[RunContext], dict[str, Any]]
    enabled: Callable[[RunConfig], bool] = lambda config: True
    settings: Callable[[RunConfig], dict[str, Any]] | None = None
    valid: Callable[[RunContext, str], bool] | None = None
    collective: bool = False


def _topology(ctx: RunContext) -> dict[str, Any]:
    from ._chain import grid_topology

    ls = ctx.landscape
    if ls.n_nonfinite or not ls.complete:
        ctx.log(f"warning: {ls.n_nonfinite} points have NaN/inf loss; topology skipped (shrink --span).")
        return {"topology": None}
    topo = grid_topology(ls.values)
    if ctx.rank == 0:
        atomic_save_npy(ctx.out / "persistence.npy", topo.pairs)
        save_merge_tree(ctx.out / "merge_tree.npz", topo.tree)
    return {"topology": topo.summary()}


def _trace(ctx: RunContext) -> dict[str, Any]:
    """Hutch++ with ``trace_hvp`` HVPs; with a budget of at least P HVPs, the exact trace ``sum_i e_i^T H e_i``
    instead (P HVPs, standard error 0): cheaper than the estimate and it allocates no (budget, P) sketch."""
    s = _trace_settings(ctx.config)
    P = ctx.objective.num_params
    if s["n_hvp"] >= P:
        import torch

        obj = ctx.objective
        total = 0.0
        for i in range(P):
            e = torch.zeros(P, dtype=obj.dtype, device=obj.device)
            e[i] = 1
            total += float(obj.hvp(e)[i])
        if not np.isfinite(total):
            from .errors import NonFiniteError

            raise NonFiniteError(f"trace: the exact Hessian trace is {total}; the loss is not finite near theta0.")
        return {"hessian": {"trace": total, "trace_stderr": 0.0, "trace_n_hvp": P}}
    from .hessian import hessian_trace

    tr = hessian_trace(ctx.objective, method=s["method"], n_hvp=s["n_hvp"], seed=s["seed"])
    return {"hessian": {"trace": tr.value, "trace_stderr": tr.stderr, "trace_n_hvp": tr.n_hvp}}


def _trace_settings(c: RunConfig) -> dict[str, Any]:
    return {"method": "hutch++", "n_hvp": c.trace_hvp, "seed": c.seed}


def _density_settings(c: RunConfig) -> dict[str, Any]:
    return {"n_probes": c.density_probes, "n_steps": c.density_steps, "seed": c.seed}


def _density(ctx: RunContext) -> dict[str, Any]:
    from .hessian import hessian_density

    s = _density_settings(ctx.config)
    dens = hessian_density(ctx.objective, n_probes=s["n_probes"], n_steps=s["n_steps"], seed=s["seed"])
    if ctx.rank == 0:
        key = _stage_key(ctx, DENSITY)
        save_density(ctx.out / "density.npz", SavedDensity(dens.grid, dens.density, dens.nodes, dens.weights, dens.n_hvp, key))
    return {"hessian": {"density_n_hvp": dens.n_hvp}}


def _density_valid(ctx: RunContext, key: str) -> bool:
    try:
        return load_density(ctx.out / "density.npz").key == key
    except StoreError:
        return False


def _sharpness_settings(c: RunConfig) -> dict[str, Any]:
    return {"rho": c.sharpness_rho, "seed": c.seed, "kinds": ["average", "worst"]}


def _sharpness(ctx: RunContext) -> dict[str, Any]:
    from .metrics.perturbation import sharpness

    s = _sharpness_settings(ctx.config)
    values = {k: sharpness(ctx.objective, rho=s["rho"], kind=k, seed=s["seed"]).value for k in s["kinds"]}
    return {"sharpness": {**values, "rho": s["rho"]}}


def _per_layer(ctx: RunContext) -> dict[str, Any]:
    from .curvature_run import per_layer

    return per_layer(ctx)


def _per_layer_settings(c: RunConfig) -> dict[str, Any]:
    from .curvature_run import per_layer_settings

    return per_layer_settings(c)


def _eigenvalue_map(ctx: RunContext) -> dict[str, Any]:
    from .curvature_run import eigenvalue_map_stage

    return eigenvalue_map_stage(ctx, _stage_key(ctx, EIGENVALUE_MAP))


def _eigenvalue_map_settings(c: RunConfig) -> dict[str, Any]:
    from .curvature_run import eigenvalue_map_settings

    return eigenvalue_map_settings(c)


def _eigenvalue_map_valid(ctx: RunContext, key: str) -> bool:
    from .curvature_run import eigenvalue_map_valid

    return eigenvalue_map_valid(ctx, key)


def _basins(ctx: RunContext) -> dict[str, Any]:
    from .curvature_run import basins

    return basins(ctx)


TOPOLOGY = Stage("topology", _topology)
TRACE = Stage("trace", _trace, lambda c: c.trace_hvp > 0, _trace_settings, collective=True)
DENSITY = Stage("density", _density, lambda c: c.density_probes > 0, _density_settings, _density_valid, True)
SHARPNESS = Stage("sharpness", _sharpness, lambda c: c.sharpness_rho > 0, _sharpness_settings, collective=True)

#: The stages after the landscape, in order. Add yours here (or pass ``extra_stages=`` to :func:`analyze`).
PER_LAYER = Stage("per_layer", _per_layer, lambda c: c.per_layer, _per_layer_settings, collective=True)
BASINS = Stage("basins", _basins, lambda c: bool(c.metrics))
EIGENVALUE_MAP = Stage(
    "eigenvalue_map", _eigenvalue_map, lambda c: c.eigenvalue_map > 0, _eigenvalue_map_settings,
    _eigenvalue_map_valid, collective=True,
)  # fmt: skip
STAGES: list[Stage] = [TOPOLOGY, TRACE, DENSITY, SHARPNESS, PER_LAYER, BASINS, EIGENVALUE_MAP]


def _stage_key(ctx: RunContext, stage: Stage) -> str:
    return _key("stage", stage.name, ctx.identity, stage.settings(ctx.config))


def _run_stage(ctx: RunContext, stage: Stage) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(sections, cache record) of one stage: reused from the previous run when allowed, else computed."""
    record = None
    if stage.settings is not None:
        key = _stage_key(ctx, stage)
        old = (ctx.previous.stages if ctx.previous else {}).get(stage.name) or {}
        if old.get("key") == key and "sections" in old and (stage.valid is None or stage.valid(ctx, key)):
            ctx.log(f"{stage.name}: reusing the saved result (same objective and settings)")
            return old["sections"], old
        record = {"key": key}
    ctx.log(f"{stage.name}...")
    t = time.perf_counter()
    sections = stage.compute(ctx)
    ctx.timings[f"{stage.name}_s"] = time.perf_counter() - t
    if record is not None:
        record["sections"] = sections
    return sections, record


# ---------------------------------------------------------------------------------------------- directions
def _directions_key(ctx: RunContext) -> str:
    c = ctx.config
    spec = str(c.directions)
    file_digest = None
    if spec not in DIRECTION_KINDS:
        file_digest = hashlib.sha256(Path(spec).read_bytes()).hexdigest()
    extra = {"tol": c.lanczos_tol} if spec == "hessian" else {}
    if c.normalization is not None:
        extra["normalization"] = c.normalization
    return _key("directions", ctx.identity, spec, c.dims, c.seed, file_digest, extra)


def _compute_directions(ctx: RunContext, *, write: bool) -> Directions:
    import torch

    from ._chain import directions_of_kind
    from .directions import Directions, as_directions

    c, obj = ctx.config, ctx.objective
    spec = str(c.directions)
    saved = ctx.out / "directions.npz"
    key = _directions_key(ctx)
    if saved.exists():
        try:
            sd = load_directions(saved)
        except StoreError:
            sd = None
        if sd is not None and sd.matches(spec, c.dims, c.seed) and sd.key is None and not _store_matches(ctx):
            ctx.log(f"directions: {saved} has no key (landform 0.1) and no landscape store of this objective "
                    "vouches for it; recomputing")
            sd = None
        want = "filter" if spec == "filter" else c.normalization
        if sd is not None and sd.matches(spec, c.dims, c.seed) and sd.key in (None, key) and sd.normalization == want:
            ctx.log(f"directions: reusing {saved}")
            vecs = torch.as_tensor(sd.vectors).to(device=obj.device, dtype=obj.dtype)
            return Directions(vecs, sd.kind, sd.normalization, sd.seed, sd.eigenvalues, sd.extra)
    if spec in DIRECTION_KINDS:
        if spec == "hessian":
            ctx.log(f"directions: top-{c.dims} Hessian eigenvectors (Lanczos)...")
        d = directions_of_kind(obj, spec, c.dims, seed=c.seed, normalization=c.normalization, tol=c.lanczos_tol)
    else:
        from .geometry import normalize_directions

        path = Path(spec)
        try:
            arr = torch.load(path, map_location="cpu") if path.suffix == ".pt" else torch.as_tensor(np.load(path))
        except Exception as exc:  # any unreadable file: numpy, pickle and zip errors differ by format
            raise InputError(
                f"directions: cannot read {spec!r} as a (dims, P) array ({type(exc).__name__}: {exc}); give a .npy "
                "saved with numpy.save or a .pt tensor saved with torch.save."
            ) from exc
        d = normalize_directions(obj, as_directions(obj, torch.as_tensor(arr).to(obj.device), n=c.dims), c.normalization)
    if write:
        _check_store(ctx, d)  # a run the landscape store will refuse must not overwrite directions.npz first
        vec = d.vectors.detach().cpu().numpy()
        save_directions(saved, SavedDirections(vec, d.kind, d.normalization, d.seed, d.eigenvalues, d.extra, spec, c.dims, key))
    return d


def _store_fingerprint(ctx: RunContext) -> dict[str, Any] | None:
    """The fingerprint in ``out/landscape``'s metadata, or None when there is no grid store there."""
    from .results import META, read_landscape_meta

    path = ctx.out / "landscape"
    if ctx.config.progressive or not (path / META).exists():
        return None
    fp = read_landscape_meta(path).get("fingerprint")
    return fp if isinstance(fp, dict) else {}


def _store_matches(ctx: RunContext) -> bool:
    """True when ``out/landscape`` is a grid store of this objective (data, loss, weights, buffers, model)."""
    from .fingerprint import objective_fingerprint

    stored = _store_fingerprint(ctx)
    return bool(stored) and all(stored.get(k) == v for k, v in objective_fingerprint(ctx.objective).items())


def _check_store(ctx: RunContext, d: Directions | None = None) -> None:
    """Refuse, before anything is written, a run whose landscape store (``out/landscape``) holds another run:
    other objective, grid (dims, span, resolution) or, when ``d`` is given, directions. The store itself
    (:meth:`landform.store.GridStore.open`) checks again, and the centre loss, when the landscape is evaluated."""
    from .evaluate import grid_axes
    from .fingerprint import fingerprint
    from .store import describe_changes, fingerprint_changes

    stored = _store_fingerprint(ctx)
    if stored is None:
        return
    path = ctx.out / "landscape"
    fix = f"Pass another output folder (--out), or delete {path} to recompute it."
    if not stored:
        raise StoreError(f"{path}: has no fingerprint (not written by a run), so it is not resumed or reused. {fix}")
    c = ctx.config
    axes = None  # an automatic span is chosen from the directions' curvature: checked by the store itself
    if c.span != "auto" and d is not None:
        from .geometry import resolve_span

        axes = grid_axes(resolve_span(ctx.objective, d, c.span, c.span_units)[0], c.resolution, c.dims)
    elif c.span != "auto" and c.span_units == "absolute":
        axes = grid_axes(c.span, c.resolution, c.dims)
    current = fingerprint(ctx.objective, d, axes)
    if c.metrics:  # as grid_landscape adds it
        from .curvature_run import builtin_metrics
        from .pointmetrics import check_metrics, metrics_fingerprint

        current["metrics"] = metrics_fingerprint(check_metrics(builtin_metrics(c.metrics)))
    elif "metrics" in stored:
        current["metrics"] = None  # a store with per-point metrics is not this run's
    changed = fingerprint_changes({k: stored.get(k) for k in current}, current)
    if changed:
        raise StoreError(
            f"{path}: holds a landscape of a different run; changed since it was written: "
            f"{describe_changes(changed)}. {fix}"
        )


def _directions(ctx: RunContext) -> Directions:
    """Rank 0 computes (or reuses) the directions and hands them to every rank under grid-parallel torchrun."""
    if ctx.world > 1 and not ctx.data_parallel:
        from ._dist import on_rank0

        def first() -> Directions:
            dd = _compute_directions(ctx, write=True)
            return dd.__class__(dd.vectors.cpu(), dd.kind, dd.normalization, dd.seed, dd.eigenvalues, dd.extra)

        d = on_rank0(first, ctx.world)
        return d.__class__(d.vectors.to(ctx.objective.device), d.kind, d.normalization, d.seed, d.eigenvalues, d.extra)
    return _compute_directions(ctx, write=ctx.rank == 0)


# ---------------------------------------------------------------------------------------------- analyze
def _previous(out: Path) -> RunResult | None:
    try:
        return load_run(out)
    except StoreError:
        return None


def _merge(sections: dict[str, Any], new: dict[str, Any]) -> None:
    for name, sec in new.items():
        if sec is None or not isinstance(sections.get(name), dict):
            sections[name] = sec if not isinstance(sec, dict) else dict(sec)
        else:
            sections[name].update(sec)


def analyze(
    objective: Objective,
    config: RunConfig | None = None,
    out: str | Path = "landform-run",
    *,
    recipe_info: dict[str, Any] | None = None,
    log: Callable[..., None] | None = None,
    extra_stages: Sequence[Stage] = (),
) -> RunResult | None:
    """Run the main job: directions, grid landscape, the :data:`STAGES` (topology, trace, density, sharpness),
    ``extra_stages``, the report, and ``summary.json`` (written once, complete, last).

    Running it again on the same folder resumes an interrupted landscape and reuses the directions and every
    cached stage whose inputs (objective identity and settings) are unchanged.

    Parameters
    ----------
    objective : Objective
    config : RunConfig, optional
        Defaults to ``RunConfig()``.
    out : path
        The run folder (created).
    recipe_info : dict, optional
        Recorded as the summary's ``recipe`` section (``spec``, ``name``, accuracies...).
    log : callable, optional
        ``log(message)`` for progress messages; default silent.
    extra_stages : sequence of Stage
        Run after :data:`STAGES`.

    Returns
    -------
    RunResult
        What was saved in ``out``. Under torchrun, ranks other than 0 return None.

    Examples
    --------
    >>> import tempfile, torch
    >>> from landform import Objective
    >>> _ = torch.manual_seed(0)
    >>> obj = Objective(torch.nn.Linear(3, 1), (torch.randn(16, 3), torch.randn(16, 1)), torch.nn.functional.mse_loss)
    >>> cfg = RunConfig(resolution=5, directions="random", trace_hvp=0, density_probes=0, sharpness_rho=0,
    ...                 report=False, progress=False)
    >>> r = analyze(obj, cfg, tempfile.mkdtemp())
    >>> r.landscape().shape, r.topology.n_minima >= 1
    ((5, 5), True)
    """
    from . import __version__
    from ._dist import rank_world
    from .curvature_run import builtin_metrics
    from .evaluate import grid_landscape

    config = (config or RunConfig()).validate()
    log = log or (lambda *a: None)
    out = _out_dir(out, "out")
    rank, world = rank_world()
    ctx = RunContext(objective, config, out, log if rank == 0 else (lambda *a: None), rank, world)
    P = objective.num_params
    if config.dims > P:
        raise InputError(
            f"dims{_flag('dims')}: {config.dims} directions asked of an objective with {P} parameters; "
            f"pass at most {P}."
        )
    ctx.previous = _previous(out)
    _check_store(ctx)  # objective and grid, before the directions are computed (or anything is written)
    t0 = time.perf_counter()
    t = time.perf_counter()
    ctx.directions = _directions(ctx)
    ctx.timings["directions_s"] = time.perf_counter() - t
    recipe_info = dict(recipe_info or {})
    t = time.perf_counter()
    span = config.span
    if span == "auto":
        from .geometry import auto_span

        span = auto_span(objective, ctx.directions, rise=config.rise)
    grid_kw = dict(
        span=span,
        resolution=config.resolution,
        out=str(out / "landscape"),
        chunk_points=config.chunk_points,
        progress=config.progress,
        provenance={"recipe": recipe_info.get("spec", "python"), "command": config.command or "landform.run.analyze"},
        metrics=builtin_metrics(config.metrics) or None,
    )
    if config.progressive:
        from .progressive import progressive_landscape

        if world > 1:
            raise InputError("progressive: runs in one process; launch it without torchrun.")
        ctx.landscape = progressive_landscape(
            objective, ctx.directions, shards=config.shards, rtol=config.rtol, seed=config.seed,
            compile=config.compile == "on", span_units=config.span_units, **grid_kw,
        )
    else:
        compile_opt = {"off": False, "on": True, "auto": "auto"}[config.compile]
        ctx.landscape = grid_landscape(
            objective, ctx.directions, span_units=config.span_units, compile=compile_opt, **grid_kw
        )
    ctx.timings["landscape_s"] = time.perf_counter() - t
    if rank != 0 and not ctx.data_parallel:
        return None  # grid-parallel: rank 0 does the (cheap) rest alone
    sections: dict[str, Any] = {}
    records: dict[str, Any] = {}
    for stage in [*STAGES, *extra_stages]:
        if not stage.enabled(config) or (rank != 0 and not stage.collective):
            continue
        new, record = _run_stage(ctx, stage)
        _merge(sections, new)
        if record is not None:
            records[stage.name] = record
    if rank != 0:
        return None  # data-parallel: every rank took part in the collectives; rank 0 writes
    if ctx.landscape.stderr is not None:
        info = ctx.landscape.provenance.get("progressive", {})
        sections["progressive"] = {
            "data_fraction": ctx.landscape.data_fraction,
            "max_stderr": float(np.nanmax(ctx.landscape.stderr)),
            **{k: info.get(k) for k in ("shards", "shards_used", "stopped", "rtol", "t95", "sample_forwards")},
            **{k: (info.get("summary") or {}).get(k)
               for k in ("smad", "smad_se", "smad_significant", "smad_significant_se")},
        }
        if ctx.landscape.metrics_stderr:  # the per-point metrics' largest standard errors
            sections["progressive"]["metrics_max_stderr"] = {
                k: float(np.nanmax(v)) for k, v in ctx.landscape.metrics_stderr.items()
            }
    if ctx.directions.eigenvalues is not None:
        sections.setdefault("hessian", {})["top_eigenvalues"] = [float(x) for x in ctx.directions.eigenvalues]
    ls = ctx.landscape
    if ls.provenance.get("geometry") is not None:
        sections["geometry"] = ls.provenance["geometry"]  # the span as asked and the coefficient span used
    result = RunResult(
        path=out,
        landform_version=__version__,
        config=config.to_dict(),
        recipe=recipe_info,
        landscape_summary=ls.summary(),
        directions={k: v for k, v in ls.directions.items() if k != "fingerprint"},
        span=config.span,
        resolution=config.resolution,
        topology=_typed_section(TopologySummary, sections.pop("topology", None)),
        hessian=_typed_section(HessianSummary, sections.pop("hessian", None)) or HessianSummary(),
        sharpness=_typed_section(SharpnessSummary, sections.pop("sharpness", None)),
        timings=ctx.timings,
        stages=records,
        extras=sections,
    )
    if config.report:
        from .report import build_report

        result = result.replace(report=str(out / "report.html"))
        t = time.perf_counter()
        path = build_report(out, result=result)
        ctx.timings["report_s"] = time.perf_counter() - t
        log(f"report: {path}")
    ctx.timings["total_s"] = time.perf_counter() - t0
    result.save()
    return result


def _out_dir(out: str | Path, name: str) -> Path:
    """``out`` as a created directory; an existing file there is an InputError, not a FileExistsError."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{name}: {str(out)!r} is a file, expected a folder; pass another path (--out).")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _typed_section(cls: type, d: dict[str, Any] | None) -> Any:
    if d is None:
        return None
    if cls is HessianSummary and d.get("top_eigenvalues") is not None:
        d = {**d, "top_eigenvalues": tuple(d["top_eigenvalues"])}
    return cls(**d)


# ---------------------------------------------------------------------------------------------- compare
COMPARE_COLUMNS = ("SMAD", "pers. range", "minima", "λmax", "trace", "sharp. avg", "sharp. worst", "CKA")


@dataclass(frozen=True)
class Comparison:
    """Several runs side by side: one row per run (``COMPARE_COLUMNS``) and the distances between their
    persistence diagrams (L-infinity ground metric), keyed ``"<run a> | <run b>"``."""

    runs: dict[str, RunResult]
    columns: tuple[str, ...]
    rows: list[list[Any]]
    bottleneck: dict[str, float]
    wasserstein_1: dict[str, float]
    json_path: Path | None = None
    figure_path: Path | None = None


def _row(name: str, r: RunResult) -> list[Any]:
    topo, h, sh = r.topology, r.hessian, r.sharpness
    return [
        name,
        topo.smad if topo else None,
        topo.persistence_range if topo else None,
        topo.n_minima if topo else None,
        h.top_eigenvalues[0] if h.top_eigenvalues else None,
        h.trace,
        sh.average if sh else None,
        sh.worst if sh else None,
        r.extras.get("cka"),
    ]


def compare(run_dirs: Sequence[str | Path], out: str | Path | None = "landform-compare") -> Comparison:
    """Compare finished run folders: a table of their key numbers and persistence-diagram distances.

    Writes ``out/comparison.json`` and ``out/comparison.png`` unless ``out`` is None. Needs no torch.
    """
    from .metrics.diagrams import bottleneck_distance, wasserstein_distance
    from .results import atomic_write_json

    if not run_dirs:
        raise InputError("run_dirs: give at least one run folder.")
    if isinstance(run_dirs, (str, Path)):
        raise InputError(f"run_dirs: expected a list of run folders, got the single path {str(run_dirs)!r}.")
    runs: dict[str, RunResult] = {}
    seen: dict[Path, Any] = {}
    for rd in run_dirs:
        r = load_run(rd)
        real = Path(r.path).resolve()
        if real in seen:
            raise InputError(
                f"run_dirs: {str(rd)!r} is the same folder as {str(seen[real])!r}; give each run once."
            )
        seen[real] = rd
        name = r.name
        if name in runs:  # two folders of the same name: tell them apart by their paths
            name = str(r.path)
            i = 2
            while name in runs:
                name, i = f"{r.path} ({i})", i + 1
        runs[name] = r
    rows = [_row(name, r) for name, r in runs.items()]
    columns = COMPARE_COLUMNS
    tax = {name: r.extras.get("taxonomy") or {} for name, r in runs.items()}
    if any(tax.values()):  # runs that carry a taxonomy (Yang et al. 2021) section: its mc and phase too
        columns = (*COMPARE_COLUMNS, "mc", "phase")
        for row in rows:
            t = tax[row[0]]
            row[-1] = row[-1] if row[-1] is not None else t.get("cka")
            row += [t.get("mc"), t.get("phase")]
    diagrams = {n: load_pairs(r.path / "persistence.npy") for n, r in runs.items() if (r.path / "persistence.npy").exists()}
    names = list(diagrams)
    bn: dict[str, float] = {}
    w1: dict[str, float] = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            bn[f"{a} | {b}"] = bottleneck_distance(diagrams[a], diagrams[b])
            w1[f"{a} | {b}"] = wasserstein_distance(diagrams[a], diagrams[b])
    cmp = Comparison(runs, columns, rows, bn, w1)
    if out is None:
        return cmp
    out = _out_dir(out, "out")
    doc = {"columns": ["run", *columns], "rows": rows, "distances": {"bottleneck": bn, "wasserstein_1": w1}}
    atomic_write_json(out / "comparison.json", doc)
    from matplotlib.figure import Figure

    from .plot import plot_comparison

    fig = Figure(figsize=(8, 4.2), layout="constrained")
    plot_comparison(runs, fig.add_subplot())
    fig.savefig(out / "comparison.png", dpi=110)
    return Comparison(runs, columns, rows, bn, w1, out / "comparison.json", out / "comparison.png")

"""Metrics over training: every checkpoint of a run in one shared subspace (and optionally its own).

:func:`track_checkpoints` writes a run folder::

    track.json                    settings, checkpoint names and fingerprints (format "landform.track")
    directions.npz                the shared directions (trajectory PCA by default) and their metadata
    trajectory.npz                the checkpoints projected onto them (landform.projection.Trajectory)
    checkpoints/NNN-<name>/
        shared/                   landscape store, centred at this checkpoint, along the shared directions
        own/                      (with hessian=True) landscape along this checkpoint's top Hessian eigenvectors
        persistence.npy           persistence diagram of the shared landscape
        metrics.json              written last and atomically: the checkpoint is done
    summary.json                  one row per checkpoint, with the bottleneck distance to the previous one

Running it again resumes: finished checkpoints (a metrics.json with the same fingerprint) are skipped and a
landscape interrupted half-way continues from its stored chunks. A folder of another run is refused.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoints import Checkpoint, load_checkpoints
from .directions import Directions
from .errors import InputError, StoreError
from .objective import Objective

__all__ = ["track_checkpoints", "TRACK_SCHEMA_VERSION"]

TRACK_SCHEMA_VERSION = 1
_FORMAT = "landform.track"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60]


def _objective_at(model: torch.nn.Module, ck: Checkpoint, data: Any, loss_fn: Any) -> Objective:
    m = copy.deepcopy(model)
    m.load_state_dict(ck.state)
    return Objective(m, data, loss_fn)


def _topology(values: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    from .topology import merge_tree, pairs_from_tree, persistence_range, smad

    tree = merge_tree(values)
    pairs = pairs_from_tree(tree)
    return {
        "smad": smad(tree),
        "n_minima": int(tree.n_minima),
        "persistence_range": persistence_range(pairs),
    }, pairs


def _save_directions(path: Path, d: Directions, key: str) -> None:
    from .store import atomic_write_bytes

    meta = {"kind": d.kind, "normalization": d.normalization, "extra": d.extra, "key": key}
    buf = io.BytesIO()
    np.savez(buf, vectors=d.vectors.detach().cpu().numpy(), meta=np.asarray(json.dumps(meta)))
    atomic_write_bytes(path, buf.getvalue())


def _load_directions(path: Path, key: str, objective: Objective) -> Directions | None:
    if not path.exists():
        return None
    z = np.load(path, allow_pickle=False)
    meta = json.loads(str(z["meta"]))
    if meta.get("key") != key:
        return None
    vecs = torch.as_tensor(z["vectors"]).to(device=objective.device, dtype=objective.dtype)
    return Directions(vecs, meta["kind"], meta.get("normalization"), None, None, meta.get("extra", {}))


def _auto_span(coords: np.ndarray, margin: float = 1.1) -> list[float]:
    """Half-width per axis so that every frame, centred at any checkpoint, shows the whole path."""
    width = coords.max(axis=0) - coords.min(axis=0)
    return [float(max(w * margin, 1e-3)) for w in width]


def track_checkpoints(
    model: torch.nn.Module,
    data: Any,
    loss_fn: Callable[..., torch.Tensor],
    checkpoints: Any,
    out: str | Path,
    *,
    dims: int = 2,
    directions: str | Directions = "pca",
    span: float | Sequence[float] | None = None,
    resolution: int = 21,
    hessian: bool = False,
    span_units: str = "absolute",
    own_normalization: str | None = None,
    subsample_seeds: Sequence[int] = (0, 1, 2),
    data_fraction: float = 0.8,
    trace_hvp: int = 30,
    seed: int = 0,
    tol: float = 1e-4,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Landscape metrics of every checkpoint of a training run, resumable checkpoint by checkpoint.

    Parameters
    ----------
    model : torch.nn.Module
        The architecture (its weights are not used: every checkpoint supplies its own, buffers included).
    data, loss_fn
        As for :class:`landform.Objective`.
    checkpoints : folder, glob, or list of modules / state dicts / paths
        In training order (a folder or glob is sorted by the step number in the names). The last one is the
        final point of the trajectory.
    out : path
        Run folder (see the module docstring).
    dims : int
        Dimension of the shared subspace (and of each checkpoint's own one).
    directions : {"pca", "filter-pca"} or Directions
        The shared subspace: trajectory PCA of all checkpoints around the last one (``"filter-pca"``:
        filter-normalised), or directions you give.
    span : float or sequence, optional
        Half-width per axis of the shared grids, in ``span_units``. Default: 1.1 times the trajectory's extent
        along each axis, so every checkpoint's frame shows the whole path (absolute units only).
    span_units : {"absolute", "relative"}
        ``"relative"``: ``span`` is a fraction of a parameter norm (docs/geometry.md). The shared grid is one
        grid for every frame, so its edge lies at ``span x ||theta||`` of the last checkpoint; each own-Hessian
        grid's edge at ``span[0] x ||theta||`` of its own checkpoint (the paper's per-checkpoint geometry). The
        conversions are in ``summary["geometry"]`` and each row's ``own_geometry``.
    own_normalization : {None, "layer", "numel", "filter"}, optional
        Per-tensor rescaling of each checkpoint's own Hessian eigenvectors (``"numel"`` with
        ``span_units="relative"`` is the paper's geometry).
    resolution : int
        Points per axis.
    hessian : bool
        Also evaluate each checkpoint along its own top-``dims`` Hessian eigenvectors (span ``span_own``: the
        same half-width as the shared grid's first axis).
    subsample_seeds : sequence of int
        SMAD spread: the shared landscape is recomputed on ``data_fraction`` of the data for each seed (2+
        seeds; empty to skip).
    trace_hvp : int
        HVP budget of the Hutch++ trace (0 skips trace and lambda_max).
    seed : int
        Seed of the trace probes and the Lanczos start vectors.
    tol : float
        Relative residual at which the Hessian eigenpairs (lambda_max, own directions) stop.

    Returns
    -------
    dict
        The content of ``summary.json``: ``rows`` (one dict per checkpoint: ``name``, ``step``, ``loss``,
        ``smad``, ``smad_mean``, ``smad_std``, ``n_minima``, ``persistence_range``, ``trace``, ``trace_stderr``,
        ``lambda_max``, ``bottleneck_prev`` and, with ``hessian=True``, ``own_*``), ``directions``, ``span``.
    """
    from . import __version__
    from .evaluate import grid_landscape
    from .fingerprint import objective_fingerprint
    from .hessian import hessian_directions, hessian_eigenpairs, hessian_trace
    from .metrics.diagrams import bottleneck_distance
    from .store import atomic_save_npy, atomic_write_json
    from .trajectory import pca_directions, project_trajectory

    say = log or (lambda s: None)
    out = Path(out)
    seeds = tuple(int(s) for s in subsample_seeds)
    if len(seeds) == 1:
        raise InputError("subsample_seeds: a spread needs at least 2 seeds (or none to skip it).")
    if not (0 < data_fraction <= 1):
        raise InputError(f"data_fraction: expected a number in (0, 1], got {data_fraction}.")
    if isinstance(directions, str) and directions not in ("pca", "filter-pca"):
        raise InputError(f"directions: expected 'pca', 'filter-pca' or a Directions, got {directions!r}.")
    from .geometry import SPAN_UNITS, resolve_span

    if span_units not in SPAN_UNITS:
        raise InputError(f"span_units: expected 'absolute' or 'relative', got {span_units!r}.")
    if span_units == "relative" and span is None:
        raise InputError(
            "span: span_units='relative' needs a span (a fraction of ||theta||, e.g. 0.05); the default span is "
            "the trajectory's extent in absolute units."
        )
    per = [] if span is None or isinstance(span, (int, float, np.integer, np.floating)) else list(span)
    if (hessian or span_units == "relative") and any(isinstance(s, (tuple, list, np.ndarray)) for s in per):
        raise InputError(
            f"span: with hessian=True or span_units='relative' track takes half-widths (one number, or one per "
            f"direction), got {span!r}; (lo, hi) pairs are for absolute shared grids only."
        )
    from .directions import NORMALIZATIONS

    if own_normalization not in NORMALIZATIONS:
        raise InputError(f"own_normalization: expected None, 'layer', 'numel' or 'filter', got {own_normalization!r}.")
    if own_normalization is not None and not hessian:
        raise InputError("own_normalization: only used with hessian=True (the own eigenvectors); drop it or add it.")
    cks = load_checkpoints(checkpoints, model)
    if len(cks) < 2:
        raise InputError(f"checkpoints: tracking needs at least 2 checkpoints, got {len(cks)}.")
    names = [c.name for c in cks]
    if len(set(names)) != len(names):
        names = [f"{i:03d}-{n}" for i, n in enumerate(names)]
    final = _objective_at(model, cks[-1], data, loss_fn)
    settings = {
        "dims": dims,
        "directions": directions if isinstance(directions, str) else f"given:{directions.fingerprint()}",
        "span": span if span is None or isinstance(span, (int, float)) else list(span),
        "span_units": span_units,
        "own_normalization": own_normalization,
        "resolution": resolution,
        "hessian": bool(hessian),
        "subsample_seeds": list(seeds),
        "data_fraction": data_fraction,
        "trace_hvp": trace_hvp,
        "seed": seed,
        "tol": tol,
        **{k: v for k, v in objective_fingerprint(final).items() if k in ("data", "loss", "model")},
    }
    # at their defaults these two are left out of the key, so a run folder written before they existed resumes
    for name, default in (("span_units", "absolute"), ("own_normalization", None)):
        if settings[name] == default:
            del settings[name]
    ck_fps = [c.fingerprint() for c in cks]
    key = hashlib.sha256(json.dumps([settings, ck_fps], sort_keys=True).encode()).hexdigest()
    manifest = out / "track.json"
    if manifest.exists():
        old = json.loads(manifest.read_text())
        if old.get("format") != _FORMAT:
            raise StoreError(f"{out}: track.json is not a landform track manifest; use another --out.")
        if old.get("key") != key:
            raise StoreError(
                f"{out}: holds a track run of other checkpoints, data or settings. Use another output folder, or "
                "delete this one to start over."
            )
    elif out.exists() and any(out.iterdir()):
        raise StoreError(f"{out}: a non-empty folder that is not a landform track run; refusing to write there.")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        manifest,
        {
            "format": _FORMAT,
            "schema_version": TRACK_SCHEMA_VERSION,
            "landform_version": __version__,
            "key": key,
            "settings": settings,
            "checkpoints": [{"name": n, "step": c.step, "fingerprint": f} for n, c, f in zip(names, cks, ck_fps, strict=True)],
        },
    )
    t0 = time.perf_counter()
    d = _load_directions(out / "directions.npz", key, final)
    if d is None:
        if isinstance(directions, Directions):
            from .directions import as_directions

            d = as_directions(final, directions, n=dims)
        else:
            say(f"shared directions: PCA of {len(cks)} checkpoints around {names[-1]}")
            d = pca_directions(final, cks, dims=dims, normalization="filter" if directions == "filter-pca" else None)
        _save_directions(out / "directions.npz", d, key)
    traj = project_trajectory(final, d, cks)
    traj = type(traj)(
        traj.coords, traj.loss, traj.projected_loss, traj.off_plane, traj.distance, tuple(names), traj.steps,
        traj.directions, traj.center_value,
    )
    traj.save(out / "trajectory.npz")
    geometry = None
    if span is None:
        spans = _auto_span(traj.coords)
    elif span_units == "relative":
        spans, geometry = resolve_span(final, d, span, "relative")  # one grid for every frame: the last's norm
        spans = [float(x) for x in spans]
    else:
        spans = span
    own_fraction = float(span[0] if isinstance(span, (list, tuple)) else span) if span_units == "relative" else None
    rows: list[dict[str, Any]] = []
    for i, (ck, name) in enumerate(zip(cks, names, strict=True)):
        ck_dir = out / "checkpoints" / f"{i:03d}-{_slug(name)}"
        done = ck_dir / "metrics.json"
        ck_key = hashlib.sha256((key + ck_fps[i]).encode()).hexdigest()
        if done.exists():
            row = json.loads(done.read_text())
            if row.get("key") != ck_key:
                raise StoreError(f"{done}: belongs to another run; delete {ck_dir} to recompute it.")
            say(f"[{i + 1}/{len(cks)}] {name}: done before, skipped")
            rows.append(row)
            continue
        tc = time.perf_counter()
        obj = _objective_at(model, ck, data, loss_fn)
        row = {"key": ck_key, "name": name, "step": ck.step, "index": i, "loss": obj.loss()}
        ls = grid_landscape(obj, d, span=spans, resolution=resolution, out=str(ck_dir / "shared"), progress=progress)
        if ls.n_nonfinite:
            row.update(smad=None, n_minima=None, persistence_range=None)
        else:
            topo, pairs = _topology(ls.values)
            row.update(topo)
            atomic_save_npy(ck_dir / "persistence.npy", pairs)
        if seeds:
            vals = []
            for s in seeds:
                sub = grid_landscape(obj.subset(data_fraction, seed=s), d, span=spans, resolution=resolution)
                vals.append(_topology(sub.values)[0]["smad"] if sub.n_nonfinite == 0 else np.nan)
            arr = np.asarray(vals, dtype=float)
            row.update(smad_subsamples=arr.tolist(), smad_mean=float(np.mean(arr)), smad_std=float(np.std(arr, ddof=1)))
        if trace_hvp:
            tr = hessian_trace(obj, n_hvp=max(3, int(trace_hvp)), seed=seed)
            row.update(trace=tr.value, trace_stderr=tr.stderr)
        if hessian:
            own = hessian_directions(obj, dims, seed=seed, tol=tol, normalization=own_normalization)
            row["lambda_max"] = float(own.eigenvalues[0])
            row["own_eigenvalues"] = [float(x) for x in own.eigenvalues]
            if own_fraction is not None:  # the edge at span x this checkpoint's own ||theta||
                s_own, row["own_geometry"] = resolve_span(obj, own, own_fraction, "relative")
            else:
                s_own = float(spans[0] if isinstance(spans, (list, tuple)) else spans)
            ols = grid_landscape(obj, own, span=s_own, resolution=resolution, out=str(ck_dir / "own"), progress=progress)
            if ols.n_nonfinite == 0:
                otopo, opairs = _topology(ols.values)
                row.update({f"own_{k}": v for k, v in otopo.items()})
                atomic_save_npy(ck_dir / "own_persistence.npy", opairs)
        elif trace_hvp:
            row["lambda_max"] = float(hessian_eigenpairs(obj, 1, seed=seed, tol=tol).values[0])
        row["seconds"] = time.perf_counter() - tc
        atomic_write_json(done, row)
        say(
            f"[{i + 1}/{len(cks)}] {name}: loss {row['loss']:.4g}, SMAD {row.get('smad')}, "
            f"trace {row.get('trace', float('nan')):.4g}, lambda_max {row.get('lambda_max', float('nan')):.4g} "
            f"({row['seconds']:.1f} s)"
        )
        rows.append(row)
    prev = None
    for row, i in zip(rows, range(len(rows)), strict=True):
        path = out / "checkpoints" / f"{i:03d}-{_slug(row['name'])}" / "persistence.npy"
        cur = np.load(path) if path.exists() else None
        row["bottleneck_prev"] = None if cur is None or prev is None else bottleneck_distance(prev, cur)
        prev = cur
    summary = {
        "format": "landform.track.summary",
        "schema_version": TRACK_SCHEMA_VERSION,
        "rows": [{k: v for k, v in r.items() if k != "key"} for r in rows],
        "directions": {k: v for k, v in d.metadata().items()},
        "span": spans,
        "span_units": span_units,
        "geometry": geometry,
        "resolution": resolution,
        "settings": settings,
        "trajectory": traj.summary(),
        "timings": {"total_s": time.perf_counter() - t0},
    }
    atomic_write_json(out / "summary.json", summary)
    return summary

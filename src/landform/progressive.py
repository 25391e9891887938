"""Progressive landscapes: the grid evaluated shard by shard of the data, stopped once its topology is known.

The data's samples are split once into ``K`` seeded shards of equal size (up to one sample). Every grid point
is evaluated on shard 1, then on shard 2, ... (the same shards for all points, so differences between
neighbouring points are far more precise than the values). After ``k`` shards (DESIGN.md section 3):

* value = the sample-weighted mean of the shard losses (with all ``K`` shards: the full-data loss);
* standard error = between-piece standard deviation / sqrt(k m) * sqrt(1 - k/K), where every shard is
  evaluated as ``m`` equal pieces (``pieces``, default 8): the k m pieces evaluated so far are a simple random
  sample without replacement of the K m pieces that make up the data, so the error has k m - 1 degrees of
  freedom instead of k - 1 and 2 standard errors cover about 95 % already at 3 shards (finite-population
  correction sqrt(1 - k/K));
* topology summary = SMAD, the significant minima and their saddles, with a leave-one-shard-out jackknife.

The run stops when the summary is stable (see :func:`progressive_landscape`) or when every shard is done.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .directions import as_directions
from .errors import InputError, StoreError
from .evaluate import grid_axes, grid_landscape
from .geometry import resolve_span
from .landscape import Landscape
from .objective import Objective
from .store import META, atomic_write_json, save_landscape

__all__ = ["progressive_landscape", "significant_topology", "SignificantTopology", "SMAD_FLOOR"]

STATE = "progressive.json"
#: SMAD values below this count as zero in the stopping rule. A nonzero significant SMAD is at least
#: min_persistence / (number of significant minima) (each one's saddle lies >= 2 % of the range above it and their
#: basins cover the grid: 0.01 for two), so the floor binds only when one minimum is significant (or more than 20
#: are): then the significant SMAD is 0 and a noise-level value (the full SMAD of a single-basin SchNet landscape:
#: 1.6e-4 +- 3e-5 between shards) is not asked to be known to 5 %.
SMAD_FLOOR = 1e-3


@dataclass(frozen=True)
class SignificantTopology:
    """The topology summary of one grid landscape.

    Attributes
    ----------
    smad : float
        SMAD of the values (all minima, DESIGN.md section 3).
    minima : tuple of int
        Flat indices of the significant minima: persistence >= ``min_persistence`` x (max - min), the global
        minimum always included; in increasing value.
    saddles : tuple of int
        Flat indices of the join saddles where the significant minima other than the global one die (elder
        rule), distinct, in increasing value.
    value_range : float
        max - min of the values.
    smad_significant : float
        SMAD of the merge tree simplified at ``min_persistence`` x (max - min): the minima below the threshold
        cancelled and their basins joined to their elders' (:func:`landform.topology.merge_tree.simplify`).
        0 when one minimum is significant. The stopping rule uses it: the full SMAD jumps whenever a noise
        minimum appears or vanishes between shards.
    all_minima : tuple of int
        Flat indices of every minimum of the merge tree (significant or not).
    persistence : tuple of float
        Their persistence over (max - min), aligned with ``all_minima`` (inf for the global minimum). The
        stopping rule reads it to find minima whose significance is still uncertain.
    """

    smad: float
    minima: tuple[int, ...]
    saddles: tuple[int, ...]
    value_range: float
    smad_significant: float = 0.0
    all_minima: tuple[int, ...] = ()
    persistence: tuple[float, ...] = ()


def significant_topology(values: np.ndarray, *, min_persistence: float = 0.02) -> SignificantTopology:
    """SMAD and the significant minima and saddles of a finite grid landscape.

    Examples
    --------
    Two wells of depth 1.0 and 0.5 below the barrier 2.0 (range 4), and a bump of 0.01 on the right slope:

    >>> t = significant_topology(np.array([3.0, 1.0, 2.0, 0.0, 1.0, 0.99, 4.0]), min_persistence=0.02)
    >>> t.minima, t.saddles
    ((3, 1), (2,))
    >>> round(t.smad_significant, 6)  # the bump cancelled, its basin {0.99, 4.0} joined to 0.0's: (2/4 5/7 + 1/4 2/7) / 2
    0.214286
    """
    from .topology import merge_tree
    from .topology.merge_tree import simplify

    tree = merge_tree(np.asarray(values, dtype=np.float64))
    flat = tree.values.ravel()
    R = float(flat.max() - flat.min())
    death = tree.death
    pers = np.where(death >= 0, flat[np.maximum(death, 0)] - flat[tree.minima], np.inf)
    keep = pers >= min_persistence * R if R > 0 else np.isinf(pers)
    minima = tuple(int(m) for m in tree.minima[keep])
    sad = death[keep & (death >= 0)]
    saddles = tuple(int(s) for s in sorted(set(sad.tolist()), key=lambda s: (flat[s], s)))
    from .topology import smad

    sig = float(smad(simplify(tree, min_persistence * R))) if R > 0 and len(minima) > 1 else 0.0
    rel = pers / R if R > 0 else np.where(np.isinf(pers), np.inf, 0.0)
    return SignificantTopology(float(smad(tree)), minima, saddles, R, sig, tuple(int(m) for m in tree.minima),
                               tuple(float(p) for p in rel))


def _borderline(top: SignificantTopology, reps: list[SignificantTopology], shape: tuple[int, ...],
                min_persistence: float, fpc: float) -> list[int]:
    """Minima of ``top`` (all of them, not only the significant ones) whose relative persistence lies within t95
    (k - 1 degrees of freedom) jackknife standard errors of the threshold ``min_persistence`` (persistences capped at twice the threshold):
    their significance is not known yet. In each leave-one-shard-out landscape a minimum's persistence is that of
    the most persistent minimum within one grid step (0 when there is none)."""
    k = len(reps)
    t = _t95(k - 1)  # the jackknife SE has k - 1 degrees of freedom (4.3 at 3 shards)
    out = []
    for m, p in zip(top.all_minima, top.persistence, strict=True):
        if not math.isfinite(p):
            continue  # the global minimum is always significant
        rp = []
        for r in reps:
            near = _matched(tuple(r.all_minima), (m,), shape)
            rp.append(max((q for q, ok in zip(r.persistence, near, strict=True) if ok), default=0.0))
        # capped at twice the threshold: only whether it crosses the threshold matters (a replicate's global
        # minimum has infinite persistence; two wells of near-equal depth may swap which one is global)
        x = np.minimum(np.array(rp), 2 * min_persistence)
        se = math.sqrt((k - 1) / k * float(((x - x.mean()) ** 2).sum())) * fpc
        if abs(min(p, 2 * min_persistence) - min_persistence) < t * se:
            out.append(int(m))
    return out


def _matched(a: tuple[int, ...], b: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """For each point of ``a``: is there a point of ``b`` within one grid step along every axis?"""
    if not a:
        return np.zeros(0, bool)
    if not b:
        return np.zeros(len(a), bool)
    ca = np.stack(np.unravel_index(np.asarray(a), shape), axis=1)
    cb = np.stack(np.unravel_index(np.asarray(b), shape), axis=1)
    return (np.abs(ca[:, None, :] - cb[None, :, :]).max(axis=2) <= 1).any(axis=1)


def _mean_stderr(V: np.ndarray, n: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sum, mean, standard error) of ``k`` shard estimates ``V`` (k, *shape) of shard sizes ``n`` (k,) out of
    ``K`` shards: the sample-weighted mean and between-shard std / sqrt(k) * sqrt(1 - k/K) (DESIGN.md)."""
    k = V.shape[0]
    S = np.tensordot(n, V, axes=1)
    mean = S / n.sum()
    fpc = math.sqrt(max(0.0, 1.0 - k / K))
    stderr = V.std(axis=0, ddof=1) / math.sqrt(k) * fpc if k >= 2 else np.full(mean.shape, np.nan)
    return S, mean, stderr


def _round_stats(
    piece_values: list[list[np.ndarray]],
    piece_sizes: list[np.ndarray],
    K: int,
    min_persistence: float,
    piece_metrics: list[list[dict[str, np.ndarray]]] | None = None,
) -> dict[str, Any]:
    """Mean, standard error and jackknifed topology after ``k = len(piece_values)`` shards, each given as the
    values of its pieces (``piece_sizes[s]`` samples each); the same mean and standard error of every per-point
    metric (``piece_metrics``: one ``{name: values}`` per piece). The standard error is between pieces (k m - 1
    degrees of freedom); the jackknife leaves out one shard at a time."""
    k = len(piece_values)
    m_total = sum(len(p) for p in piece_sizes[:k])
    units = m_total / k * K  # pieces in the whole data (every shard has the same number of pieces)
    Vp = np.stack([v for shard in piece_values for v in shard])  # (k m, *shape)
    npc = np.concatenate([np.asarray(p, dtype=np.float64) for p in piece_sizes[:k]])
    _, mean, stderr = _mean_stderr(Vp, npc, units)
    n = np.array([float(np.sum(p)) for p in piece_sizes[:k]])
    # each shard's sample-weighted mean from its pieces (for the leave-one-shard-out jackknife)
    V = np.stack([np.tensordot(np.asarray(piece_sizes[s], dtype=np.float64), np.stack(piece_values[s]), axes=1) / n[s]
                  for s in range(k)])  # fmt: skip
    S = np.tensordot(n, V, axes=1)
    fpc = math.sqrt(max(0.0, 1.0 - k / K))
    metrics: dict[str, np.ndarray] = {}
    metrics_stderr: dict[str, np.ndarray] = {}
    for name in piece_metrics[0][0] if piece_metrics else ():
        Mp = np.stack([pm[name] for shard in piece_metrics for pm in shard])
        _, metrics[name], metrics_stderr[name] = _mean_stderr(Mp, npc, units)
    out: dict[str, Any] = {"k": k, "pieces": m_total // k, "mean": mean, "stderr": stderr, "topology": None,
                           "metrics": metrics,
                           "metrics_stderr": metrics_stderr}
    if not np.isfinite(mean).all() or k < 2:
        return out
    top = significant_topology(mean, min_persistence=min_persistence)
    reps = [significant_topology((S - n[j] * V[j]) / (n.sum() - n[j]), min_persistence=min_persistence) for j in range(k)]
    def jackknife_se(x: np.ndarray) -> float:
        return math.sqrt((k - 1) / k * float(((x - x.mean()) ** 2).sum())) * fpc

    smad_se = jackknife_se(np.array([r.smad for r in reps]))
    sig_se = jackknife_se(np.array([r.smad_significant for r in reps]))
    shape = mean.shape
    min_cert = np.mean([_matched(top.minima, r.minima, shape) for r in reps], axis=0) if top.minima else np.zeros(0)
    sad_cert = np.mean([_matched(top.saddles, r.saddles, shape) for r in reps], axis=0) if top.saddles else np.zeros(0)
    counts_min = [len(r.minima) for r in reps]
    counts_sad = [len(r.saddles) for r in reps]
    R = top.value_range
    out["topology"] = {
        "smad": top.smad,
        "smad_se": smad_se,
        "smad_significant": top.smad_significant,
        "smad_significant_se": sig_se,
        "minima": list(top.minima),
        "minima_certainty": [float(c) for c in min_cert],
        "saddles": list(top.saddles),
        "saddles_certainty": [float(c) for c in sad_cert],
        "jackknife_minima_counts": [min(counts_min), max(counts_min)],
        "jackknife_saddle_counts": [min(counts_sad), max(counts_sad)],
        # minima within t95 jackknife SEs of the significance threshold: the rule waits for them
        "borderline_minima": _borderline(top, reps, shape, min_persistence, fpc),
        "value_range": R,
        "max_stderr_over_range": float(stderr.max() / R) if R > 0 else float("inf"),
    }
    return out


def _is_stable(stats: dict[str, Any], rtol: float) -> bool:
    top = stats["topology"]
    if rtol <= 0 or top is None or stats["k"] < 3:
        return False
    n_min, n_sad = len(top["minima"]), len(top["saddles"])
    return (
        top["smad_significant_se"] <= rtol * max(abs(top["smad_significant"]), SMAD_FLOOR)
        and all(c == 1.0 for c in top["minima_certainty"] + top["saddles_certainty"])
        and top["jackknife_minima_counts"] == [n_min, n_min]
        and top["jackknife_saddle_counts"] == [n_sad, n_sad]
        and not top["borderline_minima"]
    )


def _split(n_samples: int, shards: int, seed: int) -> list[np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n_samples)
    return [np.sort(p) for p in np.array_split(perm, shards)]


def _check_args(
    objective: Objective, shards: Any, rtol: Any, max_shards: Any, min_persistence: Any, seed: Any = 0
) -> None:
    if not isinstance(objective, Objective):
        raise InputError(f"objective: expected a landform.Objective, got {type(objective).__name__}.")
    if objective.data_parallel:
        raise InputError(
            "objective: progressive_landscape splits the data itself; use an objective without data_parallel."
        )
    N = objective.num_samples
    if isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 2:
        raise InputError(f"shards: expected an integer >= 2 (the data is split into that many parts), got {shards!r}.")
    if N < 2:
        raise InputError(
            f"data: it holds {N} sample, which cannot be split into shards; progressive evaluation needs at least "
            "2 samples (use grid_landscape for a single sample)."
        )
    if shards > N:
        raise InputError(
            f"shards: {shards} shards of {N} samples would leave some empty; pass shards <= {N} (the number of "
            "samples)."
        )
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.integer, np.floating)) or not (
        math.isfinite(rtol) and rtol >= 0
    ):
        raise InputError(f"rtol: expected a finite number >= 0 (0 means all the data), got {rtol!r}.")
    if max_shards is not None and (
        isinstance(max_shards, bool) or not isinstance(max_shards, (int, np.integer)) or not 2 <= max_shards <= shards
    ):
        raise InputError(f"max_shards: expected None or an integer in [2, shards={shards}], got {max_shards!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed: expected an integer >= 0 (the seed of the data split), got {seed!r}.")
    if not (isinstance(min_persistence, (int, float)) and 0 <= min_persistence < 1):
        raise InputError(f"min_persistence: expected a fraction of the value range in [0, 1), got {min_persistence!r}.")


def _open_state(out: Path, template: Landscape, state: dict[str, Any]) -> None:
    if out.exists() and not out.is_dir():
        raise StoreError(f"{out}: exists and is not a directory; choose another output path.")
    if (out / STATE).exists():
        try:
            old = json.loads((out / STATE).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{out / STATE}: unreadable ({exc}); delete the directory to start over.") from exc
        if old.get("fingerprint") != state["fingerprint"]:
            from .store import describe_changes, fingerprint_changes

            if isinstance(old.get("components"), dict):
                what = "what changed: " + describe_changes(fingerprint_changes(old["components"], state["components"]))
            else:  # written before the components were stored
                what = "other weights, loss, directions, grid, data, metrics, shards, pieces or seed"
            raise StoreError(
                f"{out}: holds a progressive landscape of a different run ({what}). Use another output path, or "
                "delete this one to start over."
            )
        return
    if (out / META).exists() or (out.exists() and any(out.iterdir())):
        raise StoreError(
            f"{out}: a non-empty directory that is not a progressive landscape; refusing to write there."
        )
    save_landscape(template, out)  # marks the directory as a landform landscape (not evaluated yet)
    atomic_write_json(out / STATE, state)


def _piece_finished(path: Path) -> bool:
    """True when ``path`` holds a complete grid store (written by an earlier call)."""
    from .results import META, read_landscape_meta

    try:
        return (path / META).exists() and bool(read_landscape_meta(path).get("complete"))
    except StoreError:
        return False


def progressive_landscape(
    objective: Objective,
    directions: Any,
    *,
    span: Any = 1.0,
    resolution: Any = 21,
    shards: int = 16,
    rtol: float = 0.05,
    seed: int = 0,
    out: str | None = None,
    progress: bool = True,
    min_persistence: float = 0.02,
    max_shards: int | None = None,
    chunk_points: int = 256,
    provenance: dict[str, Any] | None = None,
    compile: bool = False,
    metrics: dict[str, Any] | None = None,
    pieces: int = 8,
    span_units: str = "absolute",
) -> Landscape:
    """Grid landscape estimated from as few shards of the data as its topology needs, with standard errors.

    The samples are split once into ``shards`` seeded parts of equal size (up to one sample), across the
    objective's batches. Every grid point is evaluated on one shard after another (the same shards for all
    points), as ``pieces`` equal parts. After each shard ``k`` the result is the sample-weighted mean landscape,
    the per-point standard error ``std_between_pieces / sqrt(k m) * sqrt(1 - k/K)`` (``m = pieces``; k m - 1
    degrees of freedom, so ``values +- 2 stderr`` covers about 95 % of the full-data values even when the rule
    stops at 3 shards), and the topology summary (SMAD, significant minima
    and saddles, :func:`significant_topology`) with its leave-one-shard-out jackknife.

    The run stops after shard ``k >= 3`` when the summary is stable within ``rtol``: the jackknife standard
    error of the significant SMAD (:class:`SignificantTopology`: the SMAD with the minima below
    ``min_persistence`` cancelled) is at most ``rtol * max(its value, SMAD_FLOOR)``, every significant minimum and saddle is found
    (within one grid step) in every leave-one-shard-out landscape, none has more or fewer of them, and no minimum's
    persistence lies within t95 (k - 1 degrees of freedom) jackknife standard errors of the threshold (its
    significance not yet known). (The
    values' own precision is ``stderr``; it does not enter the rule, which is about the topology.) Otherwise it
    goes on until all shards are done, which gives the full-data landscape (to float rounding) with zero
    standard error.

    Parameters
    ----------
    objective : Objective
        Its loss must be a mean of per-sample terms (the batch weighting assumes it too).
    directions : Directions, (n, P) tensor, or list of per-parameter dicts
    span, resolution, span_units
        The grid, as in :func:`landform.grid_landscape` (``span_units="relative"``: fractions of ``||theta0||``;
        ``span="auto"``: chosen once from the curvature on all the data). The span is resolved once, before
        the first shard, so every shard and piece is evaluated on the same grid; the conversion is in
        ``provenance["geometry"]``.
    shards : int
        K, the number of parts the data is split into (2 <= K <= number of samples).
    rtol : float
        Relative tolerance of the stopping rule; 0 evaluates all the data.
    seed : int
        Seed of the split (an integer >= 0).
    out : str, optional
        Directory of the result. Each shard's values are stored under ``out/shards/`` (atomically, chunk by
        chunk); a run started again with the same arguments resumes at the shard it stopped in, and with a
        smaller ``rtol`` goes on from the shards already done. The current estimate is saved to ``out`` after
        every shard (:func:`landform.load_landscape` reads it with its standard errors).
    progress : bool
        Progress bars and one line per shard on stderr.
    min_persistence : float
        A minimum is significant when its persistence is at least this fraction of the value range.
    max_shards : int, optional
        Stop after this many shards at most (a budget; the result then says it did not converge).
    chunk_points : int
        Points per stored chunk within a shard.
    provenance : dict, optional
        Extra entries for the result's provenance.
    compile : bool
        Evaluate through :func:`torch.compile` (:meth:`Objective.compiled`, compiled once for all shards).
    pieces : int
        Parts each shard is evaluated in, for the standard error (default 8; at most the smallest shard's size).
        The pieces of all shards are a random partition of the data, so the error has k m - 1 degrees of freedom
        rather than k - 1. More pieces cost more weight updates (one per grid point and piece), not more
        sample-forwards. ``pieces=1`` gives the between-shard error (k - 1 degrees of freedom: ``t95`` in the
        provenance is then the honest multiplier).
    metrics : dict of str to callable, optional
        Per-point metrics ``{name: fn(outputs, targets)}`` (batch means, e.g.
        :func:`landform.pointmetrics.accuracy`), evaluated in the same forward pass as the loss on every shard
        (as :func:`landform.grid_landscape` does) and combined exactly like the loss: ``ls.metrics[name]`` the
        sample-weighted mean over the shards used, ``ls.metrics_stderr[name]`` its standard error (the same
        formula). They are stored and resumed with each shard and are part of the store's fingerprint; they do
        not enter the stopping rule.

    Returns
    -------
    Landscape
        ``values`` the estimate, ``stderr`` its standard errors, ``data_fraction`` the share of samples used,
        ``metrics`` and ``metrics_stderr`` the per-point metrics and their standard errors;
        ``provenance["progressive"]`` the split, each round's summary, the certainty (share of jackknife
        replicates) of each significant minimum and saddle, why it stopped and the sample-forwards spent.

    Examples
    --------
    >>> import torch
    >>> from landform import Objective, random_directions
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(64, 3, generator=g), torch.randn(64, 1, generator=g)
    >>> torch.manual_seed(0) and None
    >>> obj = Objective(torch.nn.Linear(3, 1), (x, y), torch.nn.functional.mse_loss)
    >>> d = random_directions(obj, 2, seed=0)
    >>> ls = progressive_landscape(obj, d, span=0.5, resolution=5, shards=4, rtol=0, progress=False)
    >>> ls.data_fraction, float(ls.stderr.max())
    (1.0, 0.0)
    >>> full = grid_landscape(obj, d, span=0.5, resolution=5, progress=False)
    >>> bool(np.allclose(ls.values, full.values, rtol=1e-6))
    True
    """
    _check_args(objective, shards, rtol, max_shards, min_persistence, seed)
    if isinstance(pieces, bool) or not isinstance(pieces, (int, np.integer)) or pieces < 1:
        raise InputError(f"pieces: expected an integer >= 1 (parts per shard for the standard error), got {pieces!r}.")
    if not isinstance(compile, bool):
        raise InputError(f"compile: expected True or False, got {compile!r}.")
    from .pointmetrics import check_metrics, metrics_fingerprint

    metrics = check_metrics(metrics)
    if compile and not objective.is_compiled:
        objective = objective.compiled()
    K = int(shards)
    d = as_directions(objective, directions)
    span, geometry = resolve_span(objective, d, span, span_units)  # once: every shard on the same grid
    axes = grid_axes(span, resolution, d.n)
    shape = tuple(len(a) for a in axes)
    parts = _split(objective.num_samples, K, int(seed))
    sizes = np.array([p.size for p in parts])
    m = int(min(int(pieces), int(sizes.min())))  # every piece holds at least one sample
    piece_idx = [np.array_split(p, m) for p in parts]
    limit = K if max_shards is None else int(max_shards)
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        from .fingerprint import fingerprint

        components = fingerprint(objective, d, axes)
        components.update({"shards": str(K), "seed": str(int(seed)), "pieces": str(m)})
        if metrics:
            components["metrics"] = metrics_fingerprint(metrics)  # names and code
        fp = hashlib.sha256(json.dumps(components, sort_keys=True, default=str).encode()).hexdigest()
        template = Landscape(np.full(shape, np.nan), axes, d.metadata(), float("nan"), {}, np.zeros(shape, bool))
        _open_state(out_path, template, {"format": "landform.progressive", "fingerprint": fp, "shards": K,
                                         "seed": int(seed), "pieces": m, "sizes": sizes.tolist(),
                                         "components": components})
    t0 = time.perf_counter()
    piece_values: list[list[np.ndarray]] = []
    piece_metrics: list[list[dict[str, np.ndarray]]] = []
    piece_sizes: list[np.ndarray] = []
    centers: list[float] = []
    history: list[dict[str, Any]] = []
    first_prov: dict[str, Any] = {}
    evaluated_points = 0
    stats: dict[str, Any] = {}
    reason = "all shards"
    for s in range(limit):
        vals, mets, cen = [], [], []
        for j, idx in enumerate(piece_idx[s]):
            sub = objective.select(idx)
            piece = None if out_path is None else out_path / "shards" / f"s{s:04d}" / f"p{j:03d}"
            # a piece finished by an earlier call is read back with that call's timings: its points are not this call's
            finished = piece is not None and _piece_finished(piece)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="grid_landscape:")  # warned once below, for the estimate
                ls = grid_landscape(
                    sub, d, span=span, resolution=resolution, progress=progress and j == 0,
                    chunk_points=chunk_points, out=None if piece is None else str(piece), metrics=metrics or None,
                )  # fmt: skip
            vals.append(ls.values)
            mets.append(ls.metrics)
            cen.append(ls.center_value)
            if not finished:
                evaluated_points += int(ls.provenance.get("timings", {}).get("points_evaluated", 0))
            first_prov = first_prov or dict(ls.provenance)
        psz = np.array([i.size for i in piece_idx[s]], dtype=np.float64)
        piece_values.append(vals)
        piece_metrics.append(mets)
        piece_sizes.append(psz)
        centers.append(float(np.dot(psz, cen) / psz.sum()))
        stats = _round_stats(piece_values, piece_sizes, K, float(min_persistence), piece_metrics)
        top = stats["topology"]
        stable = _is_stable(stats, float(rtol))
        row = {"shards": s + 1, "data_fraction": float(sizes[: s + 1].sum() / sizes.sum()), "stable": stable}
        if top is not None:
            row.update({key: top[key] for key in ("smad", "smad_se", "smad_significant", "smad_significant_se",
                                                  "max_stderr_over_range")})
            row.update({"n_minima": len(top["minima"]), "n_saddles": len(top["saddles"]),
                        "n_borderline": len(top["borderline_minima"]),
                        "certain_minima": int(sum(c == 1.0 for c in top["minima_certainty"])),
                        "certain_saddles": int(sum(c == 1.0 for c in top["saddles_certainty"]))})
        history.append(row)
        if progress:
            msg = f"progressive: shard {s + 1}/{K} ({100 * row['data_fraction']:.1f} % of the data)"
            if top is not None:
                msg += (f": SMAD {top['smad']:.4g} +- {top['smad_se']:.2g} (significant "
                        f"{top['smad_significant']:.4g} +- {top['smad_significant_se']:.2g}), {row['n_minima']} significant minima "
                        f"({row['certain_minima']} certain"
                        + (f", {row['n_borderline']} minima at the threshold" if row["n_borderline"] else "")
                        + f"), {row['n_saddles']} saddles, max stderr "
                        f"{100 * top['max_stderr_over_range']:.2g} % of range" + (" - stable" if stable else ""))
            print(msg, file=sys.stderr)
        done = s + 1
        if stable:
            reason = "stable"
        elif done == limit and limit < K:
            reason = "max_shards"
        if out_path is not None or stable or done == limit:
            result = _result(stats, sizes, K, centers, d, axes, history, first_prov, objective, reason if
                             (stable or done == limit) else "running", int(seed), float(rtol), float(min_persistence),
                             evaluated_points, time.perf_counter() - t0, provenance, geometry)
            if out_path is not None:
                save_landscape(result, out_path)
        if stable:
            break
    if result.n_nonfinite:
        warnings.warn(
            f"progressive_landscape: {result.n_nonfinite} of {result.values.size} points have NaN or inf loss; they "
            "are kept, and without a finite landscape no topology is summarised (all shards are evaluated).",
            stacklevel=2,
        )
    return result


def _t95(dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, dof)) if dof >= 1 else float("inf")


def _result(stats, sizes, K, centers, d, axes, history, first_prov, objective, reason, seed, rtol, min_persistence,
            evaluated_points, elapsed, provenance, geometry) -> Landscape:
    k = stats["k"]
    n = sizes[:k]
    used = int(n.sum())
    total_points = int(np.prod([len(a) for a in axes]))
    prov = {key: v for key, v in first_prov.items() if key not in ("timings", "num_samples")}
    prov["num_samples"] = objective.num_samples
    prov["timings"] = {"total_s": elapsed, "points_evaluated": evaluated_points}
    top = stats["topology"]
    prov["progressive"] = {
        "shards": K,
        "shards_used": k,
        # the standard error is between the k m pieces evaluated: k m - 1 degrees of freedom, and t95 x stderr
        # is the 95 % interval (about 2 x stderr from 3 shards of 8 pieces; tests/test_progressive_calibration.py)
        "pieces": stats["pieces"],
        "dof": k * stats["pieces"] - 1,
        "t95": _t95(k * stats["pieces"] - 1),
        "seed": seed,
        "rtol": rtol,
        "min_persistence": min_persistence,
        "smad_floor": SMAD_FLOOR,
        "shard_sizes": sizes.tolist(),
        "stopped": reason,
        "converged": reason in ("stable", "all shards"),
        # one forward of one sample = one sample-forward; each shard also evaluates the centre once
        "sample_forwards": int((total_points + 1) * used),
        "full_data_sample_forwards": int((total_points + 1) * int(sizes.sum())),
        "summary": top,
        "history": history,
    }
    prov["geometry"] = geometry
    prov.update(provenance or {})
    center = float(np.dot(n, centers) / used)
    return Landscape(stats["mean"], axes, d.metadata(), center, prov, stderr=stats["stderr"],
                     data_fraction=used / int(sizes.sum()), metrics=stats["metrics"],
                     metrics_stderr=stats["metrics_stderr"])

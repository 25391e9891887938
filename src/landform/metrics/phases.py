"""The loss-landscape taxonomy of Yang et al. (2021).

Yang, Hodgkinson, Theisen, Zou, Gonzalez, Ramchandran and Mahoney, "Taxonomizing local versus global structure
in neural network loss landscapes", NeurIPS 2021 (arXiv:2107.11228). For a set of models trained alike from
different seeds they measure

- the training loss (poorly trained vs well trained),
- local curvature: the Hessian's top eigenvalue and trace (locally sharp vs flat),
- global connectivity: the mode connectivity ``mc = (L(a) + L(b)) / 2 - L(gamma(t*))`` along a trained Bezier
  curve ``gamma`` between two seeds, ``t*`` maximising ``|mc|``: negative when the curve crosses a barrier
  (globally poorly connected), positive when it finds lower loss than the end points, about zero when the
  seeds are well connected,
- the CKA similarity of the seeds' representations,

and read five phases from them (their Fig. 1 and Table 1): I (poorly trained, globally poorly connected:
``mc < 0``), II (poorly trained, well connected: ``mc >= 0``, typically ``mc > 0``), III (well trained, poorly
connected: ``mc < 0``), IV-A (well trained, well connected, ``mc ~ 0``, dissimilar seeds: low CKA) and IV-B (the
same with similar seeds: high CKA; the phase with the best test accuracy in their experiments). The paper draws
the boundaries from its phase diagrams and gives no numeric thresholds; the three below are landform's,
named, and to be set for the task at hand (:data:`DEFAULT_THRESHOLDS`).

:func:`classify_phase` is numpy-only; :func:`taxonomy` measures everything from models (torch).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError, NonFiniteInputError

__all__ = ["DEFAULT_THRESHOLDS", "PHASES", "Taxonomy", "classify_phase", "taxonomy"]

#: ``loss``: a training loss below it is "well trained" (in the loss's units; 0.1 nats of cross-entropy is about
#: 90 % confidence in the right class). ``mc``: ``mc < -mc`` counts as a barrier (globally poorly connected).
#: ``cka``: mean CKA between seeds at or above it is "similar" (IV-B), below it "dissimilar" (IV-A).
DEFAULT_THRESHOLDS = {"loss": 0.1, "mc": 0.02, "cka": 0.8}

PHASES = {
    "I": "poorly trained, globally poorly connected (mc < 0)",
    "II": "poorly trained, globally well connected (mc >= 0)",
    "III": "well trained, globally poorly connected (mc < 0)",
    "IV-A": "well trained, globally well connected, dissimilar seeds (low CKA)",
    "IV-B": "well trained, globally well connected, similar seeds (high CKA)",
}


def classify_phase(
    train_loss: float, mc: float, cka: float | None = None, *, thresholds: dict[str, float] | None = None
) -> str:
    """The phase of Yang et al. (2021) implied by a training loss, a mode connectivity and a CKA similarity.

    Parameters
    ----------
    train_loss : float
        Mean training loss of the seeds.
    mc : float
        Mean mode connectivity between seeds (negative: a barrier).
    cka : float, optional
        Mean CKA similarity between seeds; needed only to split phase IV (``"IV"`` is returned without it).
    thresholds : dict, optional
        Overrides of :data:`DEFAULT_THRESHOLDS` (``loss``, ``mc``, ``cka``).

    Examples
    --------
    >>> classify_phase(1.2, -0.3), classify_phase(1.2, 0.4), classify_phase(0.01, -0.5)
    ('I', 'II', 'III')
    >>> classify_phase(0.01, 0.001, 0.95), classify_phase(0.01, 0.001, 0.4), classify_phase(0.01, 0.0)
    ('IV-B', 'IV-A', 'IV')
    """
    th = _thresholds(thresholds)
    vals = {"train_loss": train_loss, "mc": mc} | ({} if cka is None else {"cka": cka})
    for k, v in vals.items():
        if not np.isfinite(float(v)):
            raise InputError(f"{k}: expected a finite number, got {v!r}.")
    well_trained = train_loss < th["loss"]
    connected = mc >= -th["mc"]
    if not well_trained:
        return "II" if connected else "I"
    if not connected:
        return "III"
    if cka is None:
        return "IV"
    return "IV-B" if cka >= th["cka"] else "IV-A"


def _thresholds(thresholds: dict[str, float] | None) -> dict[str, float]:
    th = dict(DEFAULT_THRESHOLDS)
    for k, v in (thresholds or {}).items():
        if k not in th:
            raise InputError(f"thresholds: unknown key {k!r}; expected some of {sorted(th)}.")
        th[k] = float(v)
    return th


@dataclass(frozen=True)
class Taxonomy:
    """Taxonomy metrics of a set of seeds and their phase.

    ``train_loss``, ``top_eigenvalue`` and ``trace`` are means over the models (per model in ``per_model``);
    ``mc`` and ``cka`` means over the pairs (per pair in ``per_pair``); ``phase`` a key of :data:`PHASES`.
    ``collapsed``: the indices of the models with the same representation for every input (no CKA: their pairs'
    ``per_pair["cka"]`` is NaN and ``cka`` the mean over the other pairs).
    """

    train_loss: float
    top_eigenvalue: float
    trace: float
    mc: float
    cka: float
    phase: str
    thresholds: dict[str, float]
    per_model: dict[str, list[float]] = field(default_factory=dict)
    per_pair: dict[str, list[float]] = field(default_factory=dict)
    collapsed: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for a run's summary): strict JSON, an undefined CKA (collapsed seeds) is
        ``None`` (null), not NaN, which JavaScript's ``JSON.parse`` and other strict readers refuse."""
        return {
            "train_loss": self.train_loss,
            "top_eigenvalue": self.top_eigenvalue,
            "trace": self.trace,
            "mc": self.mc,
            "cka": _null_if_nan(self.cka),
            "phase": self.phase,
            "phase_description": PHASES.get(self.phase, ""),
            "thresholds": self.thresholds,
            "per_model": self.per_model,
            "per_pair": {k: [_null_if_nan(v) for v in vs] for k, vs in self.per_pair.items()},
            "collapsed": list(self.collapsed),
            "reference": "Yang et al. 2021, Taxonomizing local versus global structure in neural network loss "
            "landscapes (NeurIPS)",
        }


def _null_if_nan(v: float) -> float | None:
    return None if isinstance(v, float) and np.isnan(v) else v


def taxonomy(
    models: Sequence[Any],
    data: Any,
    loss_fn: Callable[..., Any],
    *,
    curve: str = "bezier",
    train_steps: int = 300,
    trace_hvp: int = 60,
    representation: Callable[[Any, Any], Any] | None = None,
    thresholds: dict[str, float] | None = None,
    batch_size: int | None = None,
    seed: int = 0,
) -> Taxonomy:
    """Measure the taxonomy metrics of models trained alike from different seeds, and their phase.

    Parameters
    ----------
    models : sequence of torch.nn.Module
        Two or more models of one architecture and training configuration (different seeds).
    data : (inputs, targets) pair, DataLoader or iterable of batches
        The TRAINING data: the loss, the curvature (Hessian of the mean loss over all of it) and the mode
        connectivity are measured on it, the CKA on its inputs.
    loss_fn : callable
        ``loss_fn(outputs, targets)``, the batch-mean training loss.
    curve : {"bezier", "linear"}
        The path of the mode connectivity (Yang et al. train a quadratic Bezier curve).
    train_steps : int
        Adam steps training the Bezier bend (:func:`landform.mode_connectivity`).
    trace_hvp : int
        HVPs of each Hutch++ trace estimate.
    representation : callable, optional
        ``representation(model, inputs)`` -> (n, d) features for CKA (default: the model's outputs).
    thresholds : dict, optional
        Overrides of :data:`DEFAULT_THRESHOLDS`.

    Returns
    -------
    Taxonomy
        A model whose representation is the same for every training input (collapsed) has no CKA: its pairs'
        CKA is NaN, ``cka`` is the mean over the other pairs (NaN if none), and a ``UserWarning`` names it; with
        no CKA at all a well-trained, connected set reads as phase ``"IV"`` (unsplit).
    """
    import torch

    from .._context import eval_mode
    from .._data import load_batches
    from ..hessian import hessian_eigenpairs, hessian_trace
    from ..objective import Objective
    from .connectivity import mode_connectivity
    from .representation import cka

    th = _thresholds(thresholds)
    models = list(models)
    if len(models) < 2:
        raise InputError(f"models: the taxonomy compares seeds; pass two or more models, got {len(models)}.")
    per_model: dict[str, list[float]] = {"train_loss": [], "top_eigenvalue": [], "trace": []}
    for m in models:
        obj = Objective(m, data, loss_fn, batch_size=batch_size)
        per_model["train_loss"].append(obj.loss())
        per_model["top_eigenvalue"].append(float(hessian_eigenpairs(obj, 1, tol=1e-3, seed=seed).values[0]))
        per_model["trace"].append(hessian_trace(obj, n_hvp=trace_hvp, seed=seed).value)
    device = next(models[0].parameters()).device
    batches = load_batches(data, batch_size, device)

    def features(m: Any) -> np.ndarray:
        rows = []
        with torch.no_grad(), eval_mode(m):
            for b in batches:
                out = representation(m, *b.args) if representation is not None else m(*b.args, **b.kwargs)
                rows.append(torch.as_tensor(out).reshape(b.n, -1).double().cpu().numpy())
        return np.concatenate(rows)

    feats = [features(m) for m in models]
    bad = [i for i, f in enumerate(feats) if not np.isfinite(f).all()]
    if bad:  # before the mode connectivity trains any curve (minutes), not after
        raise NonFiniteInputError(
            f"models: model(s) {bad} give NaN or inf representations on the training data (the outputs, or "
            "`representation`'s features); the CKA between seeds needs finite ones. Check those models (a layer "
            "that overflows?) or the representation function."
        )
    if feats[0].shape[0] < 2:
        raise InputError(f"data: the CKA between seeds needs at least 2 training inputs, got {feats[0].shape[0]}.")
    # A collapsed model (every training input gives the same features, e.g. all ReLUs dead) has no CKA with
    # anything (0/0): its pairs get NaN, the mean CKA is over the other pairs, and the phase, which needs the
    # CKA only to split a well-trained phase IV, is read without it when no pair has one.
    collapsed = [i for i, f in enumerate(feats) if np.array_equal(f, np.broadcast_to(f[:1], f.shape))]
    per_pair: dict[str, list[float]] = {"mc": [], "barrier": [], "cka": []}
    for i, j in itertools.combinations(range(len(models)), 2):
        con = mode_connectivity(
            models[i], models[j], data, loss_fn, curve=curve, train_steps=train_steps, seed=seed, batch_size=batch_size
        )
        per_pair["mc"].append(float(con.connectivity))
        per_pair["barrier"].append(float(con.barrier))
        per_pair["cka"].append(float("nan") if i in collapsed or j in collapsed else float(cka(feats[i], feats[j])))
    means = {k: float(np.mean(v)) for k, v in (per_model | per_pair).items() if k != "cka"}
    defined = [c for c in per_pair["cka"] if not np.isnan(c)]
    means["cka"] = float(np.mean(defined)) if defined else float("nan")
    if collapsed:
        # The counts, the mean and the collapsed models' losses make the text differ between calls: Python shows
        # a warning once per distinct text and place, so a sweep repeating one text would hide later cells.
        losses = ", ".join(f"{per_model['train_loss'][i]:.6g}" for i in collapsed)
        warnings.warn(
            f"taxonomy: model(s) {collapsed} of {len(models)} (train loss {losses}) give the same representation "
            "for every training input (collapsed, e.g. dead ReLUs), so CKA is undefined for their pairs: NaN in "
            f"per_pair['cka']; the mean CKA, {means['cka']:.4g}, is over the other {len(defined)} of "
            f"{len(per_pair['cka'])} pairs (NaN when none is left).",
            stacklevel=2,
        )
    return Taxonomy(
        train_loss=means["train_loss"],
        top_eigenvalue=means["top_eigenvalue"],
        trace=means["trace"],
        mc=means["mc"],
        cka=means["cka"],
        phase=classify_phase(means["train_loss"], means["mc"], means["cka"] if defined else None, thresholds=th),
        thresholds=th,
        per_model=per_model,
        per_pair=per_pair,
        collapsed=tuple(collapsed),
    )

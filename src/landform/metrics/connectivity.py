"""Mode connectivity: the loss along a linear path or a trained quadratic Bezier curve between two models."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

from .._data import load_batches
from .._validation import check_choice, check_float, check_int, check_module
from ..errors import InputError, NonFiniteError

__all__ = ["Connectivity", "mode_connectivity"]


@dataclass(frozen=True, eq=False)
class Connectivity:
    """Loss (and metric) along a curve between two models.

    Attributes
    ----------
    t : numpy.ndarray
        Curve parameter in [0, 1]; t = 0 is model_a, t = 1 is model_b.
    loss : numpy.ndarray
    metric : numpy.ndarray or None
    barrier : float
        ``max_t L(t) - max(L(0), L(1))``.
    connectivity : float
        Yang et al. 2021: ``(L(0) + L(1)) / 2 - L(t*)``, t* maximising its absolute value (negative when the
        path goes over a barrier).
    curve : str
    bend : torch.Tensor or None
        The trained control point of the Bezier curve, flat over the trainable parameters.
    """

    t: np.ndarray
    loss: np.ndarray
    metric: np.ndarray | None
    barrier: float
    connectivity: float
    curve: str
    bend: torch.Tensor | None = None


def _flat(model: torch.nn.Module) -> tuple[list[str], list[torch.Size], torch.Tensor]:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [n for n, _ in named], [p.shape for _, p in named], torch.cat([p.detach().reshape(-1) for _, p in named])


def mode_connectivity(
    model_a: torch.nn.Module,
    model_b: torch.nn.Module,
    data: Any,
    loss_fn: Callable[..., torch.Tensor],
    *,
    curve: str = "linear",
    n_points: int = 21,
    metric: Callable[..., torch.Tensor] | None = None,
    train_steps: int = 300,
    lr: float = 1e-2,
    seed: int = 0,
    batch_size: int | None = None,
) -> Connectivity:
    """Loss along the path from ``model_a`` to ``model_b``.

    ``curve="linear"``: ``theta(t) = (1 - t) a + t b``. ``curve="bezier"``: ``theta(t) = (1-t)^2 a + 2 t (1-t) c
    + t^2 b`` with the bend ``c`` (started at the midpoint) trained by Adam on the loss at random t, through
    :func:`torch.func.functional_call`, so any architecture works unchanged. Where the model has BatchNorm, its
    statistics are recomputed at every evaluated t: a pass over the data on a private copy with only the
    BatchNorm layers in train mode (dropout and every other layer stay in eval mode). The Bezier training
    draws t from a generator seeded with ``seed`` and runs with the same layer modes, inside a forked RNG
    seeded with ``seed``: the result does not depend on the global random state. Neither model is modified.

    Parameters
    ----------
    data : DataLoader, (inputs, targets) pair or iterable of batches
    loss_fn : ``loss_fn(outputs, targets)`` returning the batch mean
    metric : optional ``metric(outputs, targets)`` returning a batch mean (e.g. accuracy)
    n_points : evaluation points on [0, 1] (>= 2)

    Raises
    ------
    NonFiniteError
        When the loss (or metric) is NaN/inf at some t: the barrier would be meaningless.
    """
    check_module("model_a", model_a)
    check_module("model_b", model_b)
    if not callable(loss_fn):
        raise InputError(f"loss_fn: expected a callable loss_fn(outputs, targets), got {type(loss_fn).__name__}.")
    if metric is not None and not callable(metric):
        raise InputError(f"metric: expected None or a callable metric(outputs, targets), got {type(metric).__name__}.")
    curve = check_choice("curve", curve, ("linear", "bezier"))
    n_points = check_int("n_points", n_points, minimum=2)
    train_steps = check_int("train_steps", train_steps, minimum=0)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    seed = check_int("seed", seed, minimum=0)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, minimum=1)
    names_a, shapes_a, a = _flat(model_a)
    names_b, shapes_b, b = _flat(model_b)
    if names_a != names_b or shapes_a != shapes_b:
        raise InputError(
            "model_a and model_b: they must have the same architecture (the same trainable parameter names and "
            f"shapes); got {len(names_a)} vs {len(names_b)} tensors"
            + (
                f", first difference at {next((x for x in zip(names_a, names_b, strict=False) if x[0] != x[1]), None)}"
                if names_a != names_b
                else ", with different shapes"
            )
            + "."
        )
    if a.device != b.device or a.dtype != b.dtype:
        raise InputError(
            f"model_a and model_b: on {a.device}/{a.dtype} vs {b.device}/{b.dtype}; put both on one device and dtype."
        )
    device = a.device
    batches = load_batches(data, batch_size, device)
    batches = [bt for bt in batches if bt.n > 0]
    if not batches:
        raise InputError("data: it yielded no samples; pass a non-empty dataset.")
    N = sum(bt.n for bt in batches)
    work = copy.deepcopy(model_a)  # private: BatchNorm statistics are recomputed here
    work.eval()
    bns = [m for m in work.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.momentum = None  # cumulative average over the pass
    numels = [int(np.prod(s)) for s in shapes_a]

    def bn_mode(train: bool) -> None:
        """Only BatchNorm layers switch: dropout and the rest stay in eval mode."""
        for m in bns:
            m.train(train)

    def scalar(value: Any, what: str, i: int) -> torch.Tensor:
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            return value
        got = f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise InputError(
            f"{what}: on batch {i} it returned {got}; it must return the batch mean as a scalar tensor "
            "(use reduction='mean')."
        )

    def unflat(theta: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: p.view(s) for n, s, p in zip(names_a, shapes_a, torch.split(theta, numels), strict=True)}

    def point(t: float, c: torch.Tensor | None) -> torch.Tensor:
        if c is None:
            return (1 - t) * a + t * b
        return (1 - t) ** 2 * a + 2 * t * (1 - t) * c + t**2 * b

    def evaluate(theta: torch.Tensor) -> tuple[float, float | None]:
        params = unflat(theta)
        with torch.no_grad():
            if bns:
                for m in bns:
                    m.reset_running_stats()
                bn_mode(True)
                try:
                    for bt in batches:
                        functional_call(work, params, bt.args, bt.kwargs, strict=False)
                finally:
                    bn_mode(False)
            total, total_m = 0.0, 0.0
            for i, bt in enumerate(batches):
                out = functional_call(work, params, bt.args, bt.kwargs, strict=False)
                total += float(scalar(loss_fn(out, bt.target), "loss_fn", i)) * bt.n / N
                if metric is not None:
                    total_m += float(scalar(metric(out, bt.target), "metric", i)) * bt.n / N
        return total, (total_m if metric is not None else None)

    bend = None
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # any stochastic layer is seeded; the global state is untouched
        torch.manual_seed(seed)
        if curve == "bezier":
            gen = torch.Generator().manual_seed(seed)
            c = ((a + b) / 2).clone().requires_grad_(True)
            opt = torch.optim.Adam([c], lr=lr)
            bn_mode(True)
            try:
                for step in range(train_steps):
                    t = float(torch.rand((), generator=gen))
                    i = step % len(batches)
                    bt = batches[i]
                    opt.zero_grad()
                    out = functional_call(work, unflat(point(t, c)), bt.args, bt.kwargs, strict=False)
                    loss = scalar(loss_fn(out, bt.target), "loss_fn", i)
                    loss.backward()
                    opt.step()
            finally:
                bn_mode(False)
            bend = c.detach()
        ts = np.linspace(0.0, 1.0, n_points)
        losses, metrics = [], []
        for t in ts:
            lval, mval = evaluate(point(float(t), bend))
            losses.append(lval)
            metrics.append(mval)
    L = np.asarray(losses)
    for name, arr in (("loss", L), ("metric", np.asarray(metrics, dtype=np.float64) if metric is not None else None)):
        if arr is not None and not np.isfinite(arr).all():
            where = ", ".join(f"{ts[j]:.3g}" for j in np.flatnonzero(~np.isfinite(arr))[:5])
            raise NonFiniteError(
                f"mode_connectivity: the {name} is NaN/inf at t = {where} on the {curve} path, so the barrier is "
                "undefined; check both models' weights and buffers for NaN/inf"
                + (" and use fewer train_steps or a smaller lr for the bend." if curve == "bezier" else ".")
            )
    barrier = float(L.max() - max(L[0], L[-1]))
    dev = (L[0] + L[-1]) / 2 - L
    conn = float(dev[int(np.argmax(np.abs(dev)))])
    return Connectivity(
        t=ts,
        loss=L,
        metric=np.asarray(metrics, dtype=np.float64) if metric is not None else None,
        barrier=barrier,
        connectivity=conn,
        curve=curve,
        bend=bend,
    )

"""Mode connectivity: the loss along a linear path or a trained quadratic Bezier curve between two models."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

from ..errors import InputError
from ..objective import _iter_batches, _split_batch, _to_device

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
    statistics are recomputed at every evaluated t (a pass over the data in train mode on a private copy).
    Neither model is modified.

    Parameters
    ----------
    data : DataLoader, (inputs, targets) pair or iterable of batches
    loss_fn : ``loss_fn(outputs, targets)`` returning the batch mean
    metric : optional ``metric(outputs, targets)`` returning a batch mean (e.g. accuracy)
    n_points : evaluation points on [0, 1] (>= 2)
    """
    if curve not in ("linear", "bezier"):
        raise InputError(f"curve: expected 'linear' or 'bezier', got {curve!r}.")
    if n_points < 2:
        raise InputError(f"n_points: expected >= 2, got {n_points}.")
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
    batches = [_split_batch(_to_device(x, device), i) for i, x in enumerate(_iter_batches(data, batch_size))]
    if not batches:
        raise InputError("data: it yielded no samples.")
    N = sum(bt.n for bt in batches)
    work = copy.deepcopy(model_a)  # private: BatchNorm statistics are recomputed here
    bns = [m for m in work.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.momentum = None  # cumulative average over the pass
    numels = [int(np.prod(s)) for s in shapes_a]

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
                work.train()
                for bt in batches:
                    functional_call(work, params, bt.args, bt.kwargs, strict=False)
            work.eval()
            total, total_m = 0.0, 0.0
            for bt in batches:
                out = functional_call(work, params, bt.args, bt.kwargs, strict=False)
                total += float(loss_fn(out, bt.target)) * bt.n / N
                if metric is not None:
                    total_m += float(metric(out, bt.target)) * bt.n / N
        return total, (total_m if metric is not None else None)

    bend = None
    if curve == "bezier":
        gen = torch.Generator().manual_seed(int(seed))
        c = ((a + b) / 2).clone().requires_grad_(True)
        opt = torch.optim.Adam([c], lr=lr)
        work.train()
        for step in range(int(train_steps)):
            t = float(torch.rand((), generator=gen))
            bt = batches[step % len(batches)]
            opt.zero_grad()
            out = functional_call(work, unflat(point(t, c)), bt.args, bt.kwargs, strict=False)
            loss = loss_fn(out, bt.target)
            loss.backward()
            opt.step()
        bend = c.detach()
    ts = np.linspace(0.0, 1.0, int(n_points))
    losses, metrics = [], []
    for t in ts:
        lval, mval = evaluate(point(float(t), bend))
        losses.append(lval)
        metrics.append(mval)
    L = np.asarray(losses)
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

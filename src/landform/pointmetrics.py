"""Extra per-point metrics (accuracy, ...) evaluated in the same forward pass as the loss.

A metric is a function ``fn(outputs, targets)`` returning the MEAN of some quantity over a batch (a scalar
tensor or a number), like the loss. At every point of a landscape its dataset value is the batch-size
weighted mean of its batch values, the same weighting :class:`~landform.Objective` gives the loss.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from ._context import eval_mode
from .errors import InputError, LandformError
from .objective import Objective

__all__ = ["accuracy", "check_metrics", "metrics_fingerprint", "loss_and_metrics"]

Metric = Callable[[Any, Any], Any]


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of rows of ``outputs`` (N, C) whose argmax equals the integer class in ``targets`` (N,).

    Examples
    --------
    >>> import torch
    >>> float(accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])))
    0.5
    """
    return (outputs.argmax(dim=-1) == targets).double().mean()


def check_metrics(metrics: Mapping[str, Metric] | None) -> dict[str, Metric]:
    """Validate a ``{name: fn}`` mapping of metrics (names are non-empty strings, values callables)."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise InputError(
            f"metrics: expected a dict {{name: fn(outputs, targets)}}, got {type(metrics).__name__} "
            "(e.g. metrics={'accuracy': landform.pointmetrics.accuracy})."
        )
    out = {}
    for name, fn in metrics.items():
        if not isinstance(name, str) or not name:
            raise InputError(f"metrics: every name must be a non-empty string, got {name!r}.")
        if not callable(fn):
            raise InputError(f"metrics[{name!r}]: expected a callable fn(outputs, targets), got {type(fn).__name__}.")
        out[name] = fn
    return out


def metrics_fingerprint(metrics: Mapping[str, Metric]) -> str:
    """SHA-256 of the metrics' names and code (:mod:`landform.fingerprint`'s digest of each callable): a store
    resumed with other metrics is refused."""
    from .fingerprint import _callable_digest

    h = hashlib.sha256()
    for name in metrics:
        h.update(name.encode() + b"\0" + _callable_digest(metrics[name]).encode() + b"\0")
    return h.hexdigest()


def _scalar(name: str, value: Any) -> torch.Tensor:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.reshape(()).double()
    if isinstance(value, np.ndarray) and value.size == 1:
        return torch.tensor(float(value.reshape(())), dtype=torch.float64)
    shape = tuple(value.shape) if hasattr(value, "shape") else type(value).__name__
    raise LandformError(
        f"metrics[{name!r}]: it returned {shape}; a metric must return one number per batch, the batch MEAN "
        "(e.g. (outputs.argmax(-1) == targets).float().mean())."
    )


def loss_and_metrics(
    objective: Objective, thetas: torch.Tensor, metrics: Mapping[str, Metric]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Loss and metrics at each row of ``thetas`` (B, P), one forward pass per point and batch.

    Returns the losses (B,) and ``{name: (B,)}``, float64 numpy arrays, batch-size weighted over the data
    (and summed over ranks for a data-parallel objective) exactly as :meth:`Objective.loss_batch`.
    """
    if thetas.dim() != 2 or thetas.shape[1] != objective.num_params:
        raise InputError(f"thetas: expected shape (B, {objective.num_params}), got {tuple(thetas.shape)}.")
    names = list(metrics)
    out = torch.zeros(thetas.shape[0], 1 + len(names), dtype=torch.float64)
    private = objective.private_model
    with torch.no_grad(), eval_mode(objective.model):
        for i in range(thetas.shape[0]):
            params = objective.layout.unflatten(thetas[i])
            if private is not None:
                torch._foreach_copy_(private[1], list(params.values()))
            for batch, w in zip(objective.batches, objective.weights, strict=True):
                if private is not None:
                    outputs = private[0](*batch.args, **batch.kwargs)
                else:
                    outputs = objective.outputs(thetas[i], batch)
                row = [objective.loss_fn(outputs, batch.target).reshape(()).double()]
                row += [_scalar(n, metrics[n](outputs, batch.target)).to(row[0].device) for n in names]
                out[i] += (torch.stack(row) * w).cpu()
    out = objective.reduce_points(out)
    arr = out.numpy()
    return arr[:, 0].copy(), {n: arr[:, 1 + j].copy() for j, n in enumerate(names)}

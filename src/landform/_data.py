"""Data handling shared by the objective and the metrics: batches of (inputs, targets), read once and cached.

Package-internal. A :class:`Batch` is one (inputs, targets) batch split into the model's positional and keyword
arguments, with its number of samples ``n``; :func:`load_batches` reads any accepted ``data`` (a DataLoader, an
(inputs, targets) pair of tensors, an iterable of batches) into a list of them on a device.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from .errors import InputError

__all__ = [
    "Batch",
    "load_batches",
    "iter_batches",
    "split_batch",
    "to_device",
    "index_batch",
    "concat_batches",
    "shard_batches",
    "nbytes",
]


@dataclass(frozen=True)
class Batch:
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    target: Any
    n: int


def index_batch(b: Batch, idx: torch.Tensor) -> Batch:
    """The rows ``idx`` of a batch (every tensor whose leading dimension is the batch size is indexed)."""

    def take(x: Any) -> Any:
        if isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] == b.n:
            return x[idx]
        if isinstance(x, (tuple, list)):
            return type(x)(take(v) for v in x)
        if isinstance(x, dict):
            return {k: take(v) for k, v in x.items()}
        return x

    return Batch(take(b.args), take(b.kwargs), take(b.target), int(idx.numel()))


def concat_batches(pieces: list[Batch]) -> Batch | None:
    """All pieces as one batch, or None when they differ in structure (then they are kept apart)."""
    if len(pieces) < 2:
        return pieces[0] if pieces else None

    def cat(xs: list[Any], ns: list[int]) -> Any:
        x0 = xs[0]
        if isinstance(x0, torch.Tensor):
            ok = all(isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] == n and x.shape[1:] == x0.shape[1:]
                     and x.dtype == x0.dtype for x, n in zip(xs, ns, strict=True))
            if not ok:
                raise _Unmergeable
            return torch.cat(xs)
        if isinstance(x0, (tuple, list)):
            if any(type(x) is not type(x0) or len(x) != len(x0) for x in xs):
                raise _Unmergeable
            return type(x0)(cat([x[i] for x in xs], ns) for i in range(len(x0)))
        if isinstance(x0, dict):
            if any(not isinstance(x, dict) or x.keys() != x0.keys() for x in xs):
                raise _Unmergeable
            return {k: cat([x[k] for x in xs], ns) for k in x0}
        raise _Unmergeable  # a non-tensor argument: keep the batches as they are

    ns = [p.n for p in pieces]
    try:
        return Batch(cat([p.args for p in pieces], ns), cat([p.kwargs for p in pieces], ns),
                      cat([p.target for p in pieces], ns), sum(ns))
    except _Unmergeable:
        return None


class _Unmergeable(Exception):
    pass


def to_device(x: Any, device: torch.device) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, (tuple, list)):
        return type(x)(to_device(v, device) for v in x)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    return x


def leading_dim(x: Any) -> int | None:
    if isinstance(x, torch.Tensor):
        return int(x.shape[0]) if x.dim() > 0 else None
    if isinstance(x, (tuple, list)) and x:
        return leading_dim(x[0])
    if isinstance(x, dict) and x:
        return leading_dim(next(iter(x.values())))
    return None


def split_batch(batch: Any, index: int) -> Batch:
    if isinstance(batch, dict):
        raise InputError(
            f"data: batch {index} is a dict; landform expects (inputs, targets) pairs. Wrap your loader so it "
            "yields (inputs, targets), where inputs is a tensor, a tuple of tensors (model(*inputs)) or a dict "
            "(model(**inputs))."
        )
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise InputError(
            f"data: batch {index} is a {type(batch).__name__}"
            + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
            + "; expected an (inputs, targets) pair."
        )
    inputs, target = batch
    if isinstance(inputs, dict):
        args, kwargs = (), dict(inputs)
    elif isinstance(inputs, (tuple, list)):
        args, kwargs = tuple(inputs), {}
    else:
        args, kwargs = (inputs,), {}
    n = leading_dim(target)
    if n is None:
        n = leading_dim(inputs)
    if n is None:
        raise InputError(
            f"data: cannot tell the size of batch {index}: its targets and inputs have no batch dimension."
        )
    return Batch(args, kwargs, target, n)


def is_single_pair(data: Any) -> bool:
    """An (inputs, targets) pair of tensors: targets a tensor with a batch dimension, inputs a tensor or a
    tuple/list/dict of tensors whose leading dimension is the same (a list of batches never ends in a bare
    tensor, so this reading is unambiguous)."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[1], torch.Tensor)):
        return False
    inputs, target = data
    if target.dim() == 0:
        return False
    leaves = list(inputs.values()) if isinstance(inputs, dict) else inputs if isinstance(inputs, (tuple, list)) else [inputs]
    tensors = [v for v in leaves if isinstance(v, torch.Tensor)]
    return bool(tensors) and all(v.dim() > 0 and v.shape[0] == target.shape[0] for v in tensors)


def slice_rows(x: Any, start: int, stop: int, n: int) -> Any:
    if isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] == n:
        return x[start:stop]
    if isinstance(x, (tuple, list)):
        return type(x)(slice_rows(v, start, stop, n) for v in x)
    if isinstance(x, dict):
        return {k: slice_rows(v, start, stop, n) for k, v in x.items()}
    return x


def _refuse_mismatched_pair(data: Any) -> None:
    """A 2-sequence of tensors whose second is a batch of targets is a pair (a list of batches never holds a bare
    tensor): if it failed :func:`is_single_pair`, its row counts differ; say so rather than call it batches."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[1], torch.Tensor)):
        return
    inputs, target = data
    if target.dim() == 0 or not isinstance(inputs, (torch.Tensor, tuple, list, dict)):
        return
    leaves = list(inputs.values()) if isinstance(inputs, dict) else inputs if isinstance(inputs, (tuple, list)) else [inputs]
    rows = sorted({int(v.shape[0]) for v in leaves if isinstance(v, torch.Tensor) and v.dim() > 0})
    if rows and rows != [int(target.shape[0])]:
        raise InputError(
            f"data: an (inputs, targets) pair needs one row per sample in both, but the targets have "
            f"{int(target.shape[0])} rows and the inputs {', '.join(map(str, rows))}. Pass inputs and targets of "
            "the same length (or a list of (inputs, targets) batches)."
        )


def iter_batches(data: Any, batch_size: int | None) -> Iterator[Any]:
    if is_single_pair(data):
        n = int(data[1].shape[0])
        if n == 0:
            raise InputError(
                "data: the (inputs, targets) pair has 0 rows (targets of shape "
                f"{tuple(data[1].shape)}); pass at least one sample."
            )
        step = n if batch_size is None else int(batch_size)
        for start in range(0, n, step):
            yield slice_rows(tuple(data), start, start + step, n)
        return
    _refuse_mismatched_pair(data)
    if isinstance(data, torch.Tensor) or not isinstance(data, Iterable):
        raise InputError(
            f"data: expected a DataLoader, an (inputs, targets) pair of tensors or an iterable of batches, "
            f"got {type(data).__name__}."
        )
    yield from data


def load_batches(data: Any, batch_size: int | None, device: torch.device) -> list[Batch]:
    """Every batch of ``data`` on ``device``, split into model arguments and targets (see :func:`iter_batches`).

    Examples
    --------
    >>> bs = load_batches((torch.zeros(5, 2), torch.ones(5)), 2, torch.device("cpu"))
    >>> [b.n for b in bs]
    [2, 2, 1]
    """
    return [split_batch(to_device(b, device), i) for i, b in enumerate(iter_batches(data, batch_size))]


def shard_batches(batches: list[Batch], rank: int, world: int, device: torch.device) -> list[Batch]:
    """Rank ``rank``'s contiguous share of the rows of every batch (of ``world`` ranks)."""
    out = []
    for b in batches:
        lo, hi = rank * b.n // world, (rank + 1) * b.n // world
        out.append(index_batch(b, torch.arange(lo, hi, device=device)))
    return out


def nbytes(x: Any) -> int:
    """Bytes of the tensors in ``x`` (nested tuples, lists, dicts and :class:`Batch` es)."""
    if isinstance(x, Batch):
        return nbytes((x.args, x.kwargs, x.target))
    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, (tuple, list)):
        return sum(nbytes(v) for v in x)
    if isinstance(x, dict):
        return sum(nbytes(v) for v in x.values())
    return 0

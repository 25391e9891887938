"""torch.distributed plumbing shared by the grid evaluation, the objective and the run. Package-internal.

Every function works without an initialised process group (then there is one rank, and nothing is sent).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch

from .errors import InputError

__all__ = ["rank_world", "on_rank0", "world_group", "all_reduce_sum", "all_gather"]

T = TypeVar("T")


def rank_world() -> tuple[int, int]:
    """(rank, world size) of an initialised torch.distributed process group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def on_rank0(fn: Callable[[], T], world: int) -> T:
    """Run ``fn`` on rank 0 and hand its result (or its error) to every rank."""
    if world == 1:
        return fn()
    import torch.distributed as dist

    box: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            box[0] = ("ok", fn())
        except Exception as exc:  # re-raised on every rank below
            box[0] = ("err", exc)
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "err":
        raise value
    return value


def world_group() -> Any:
    """The default process group; an :class:`InputError` when none is initialised (``data_parallel=True``)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise InputError(
            "data_parallel=True needs an initialised torch.distributed process group (launch with torchrun and "
            "call torch.distributed.init_process_group, or let 'landform analyze' do it)."
        )
    return dist.group.WORLD


def all_reduce_sum(t: torch.Tensor, group: Any) -> torch.Tensor:
    """``t`` summed over the ranks of ``group`` in place (``t`` itself when ``group`` is None)."""
    if group is None:
        return t
    import torch.distributed as dist

    dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
    return t


def all_gather(obj: Any, world: int) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if world == 1:
        return [obj]
    import torch.distributed as dist

    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, obj)
    return parts

"""torch.distributed helpers: one model on every rank.

Under ``torchrun`` every rank runs the recipe, so every rank builds its own model. A recipe whose model
depends on the process (seeded by ``RANK``, trained with thread-dependent kernels, loaded from a file that
changed in between) would let the ranks evaluate different models and stitch their values into one
landscape. :func:`broadcast_model` copies rank 0's parameters and buffers to every rank in place, as
``torch.nn.parallel.DistributedDataParallel`` does when it is built; ``landform analyze`` calls it before
building the objective, and :func:`landform.grid_landscape` refuses to run when the ranks' objectives still
differ (data, loss, weights, ...; see :mod:`landform.fingerprint`).
"""

from __future__ import annotations

from typing import Any

import torch

from .errors import InputError

__all__ = ["broadcast_model"]


def _dist() -> Any:
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def broadcast_model(model: torch.nn.Module, src: int = 0) -> int:
    """Overwrite every rank's parameters and buffers with rank ``src``'s, in place.

    A no-op (returning 0) outside an initialised process group or with one rank. Every rank must call it, with
    models of the same structure (names, shapes, dtypes); a mismatch raises :class:`~landform.InputError` on
    every rank instead of hanging.

    Parameters
    ----------
    model : torch.nn.Module
        The model of this rank. Its tensors stay where they are (device, dtype, identity); only their
        values change.
    src : int
        The rank whose values every rank gets.

    Returns
    -------
    int
        The number of tensors broadcast.

    Examples
    --------
    >>> import torch
    >>> broadcast_model(torch.nn.Linear(2, 1))  # no process group: nothing to do
    0
    """
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"model: expected a torch.nn.Module, got {type(model).__name__}.")
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return 0
    named: list[tuple[str, torch.Tensor]] = []
    seen: set[int] = set()
    for name, t in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
        if id(t) not in seen:
            seen.add(id(t))
            named.append((name, t))
    layout = [(n, tuple(t.shape), str(t.dtype)) for n, t in named]
    layouts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(layouts, layout)
    for r, other in enumerate(layouts):
        if other != layouts[src]:
            diff = sorted(set(map(tuple, other)) ^ set(map(tuple, layouts[src])))[:3]
            raise InputError(
                f"model: rank {r} has another structure than rank {src} (first differences: {diff}); every rank "
                "must build the same architecture before its weights can be broadcast."
            )
    backend = dist.get_backend()
    with torch.no_grad():
        for _, t in named:
            # NCCL moves CUDA tensors only; gloo moves CPU tensors (and CUDA ones through the host)
            dev = t.device
            buf = t.detach()
            if backend == "nccl" and dev.type != "cuda":
                buf = buf.to(f"cuda:{torch.cuda.current_device()}")
            buf = buf.contiguous()
            dist.broadcast(buf, src=src)
            if buf.data_ptr() != t.data_ptr():
                t.copy_(buf.to(dev))
    return len(named)

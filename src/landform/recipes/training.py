"""One minibatch training loop for the examples, benchmarks and built-in recipes (they trained with four copies
of it): seeded shuffling, Adam / AdamW / SGD, a callback after every epoch (checkpoints), and by default one
deterministic thread, so a seed gives the same weights on any machine (:mod:`landform.determinism`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..determinism import single_threaded
from ..errors import InputError

__all__ = ["fit"]


def fit(
    model: nn.Module,
    inputs: torch.Tensor | tuple[torch.Tensor, ...],
    targets: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    loss_fn: Callable[..., torch.Tensor] = nn.functional.cross_entropy,
    optimizer: str = "adam",
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    seed: int = 0,
    on_epoch: Callable[[int, nn.Module], Any] | None = None,
    deterministic: bool = True,
) -> nn.Module:
    """Train ``model`` on ``loss_fn(model(*inputs[idx]), targets[idx])`` over shuffled minibatches.

    Parameters
    ----------
    model : nn.Module
    inputs : tensor or tuple of tensors
        The model's positional arguments, one row per sample.
    targets : tensor
    epochs, batch_size : int
    loss_fn : callable
        ``loss_fn(outputs, targets)``, a batch mean (default cross-entropy).
    optimizer : {"adam", "adamw", "sgd"}
        One optimiser for the whole run, with ``lr``, ``weight_decay`` and (SGD) ``momentum``.
    seed : int
        Seed of the shuffling (a private generator: the global random state is not used).
    on_epoch : callable, optional
        ``on_epoch(epoch, model)`` after each epoch (1-based), e.g. to save a checkpoint.
    deterministic : bool
        Train inside :func:`~landform.determinism.single_threaded` (default): the weights are bitwise the same
        whatever the machine's thread count. Multi-threaded kernels add partial sums in a thread-dependent
        order, and training amplifies those last bits (the digits CNN's 1-epoch "underfit" model: train
        accuracy 0.280 on one thread, 0.277 on two). ``False`` trains on every thread, faster on large models.
        On CUDA, deterministic training needs ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` in the environment (an
        InputError says so otherwise).

    Returns
    -------
    nn.Module
        The model, in eval mode.

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    >>> m = fit(nn.Linear(3, 2), x, y, epochs=2, batch_size=8, optimizer="sgd", lr=0.1)
    >>> m.training
    False
    """
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    if any(len(a) != len(targets) for a in args):
        raise InputError("inputs: every input tensor needs one row per target; their lengths differ.")
    if deterministic and any(p.is_cuda for p in model.parameters()) and (
        os.environ.get("CUBLAS_WORKSPACE_CONFIG") not in (":4096:8", ":16:8")
    ):  # torch's deterministic cuBLAS needs a fixed workspace, set before CUDA starts
        raise InputError(
            "deterministic: bitwise-reproducible training on CUDA needs CUBLAS_WORKSPACE_CONFIG=:4096:8 in the "
            "environment before Python starts; set it, or pass deterministic=False."
        )
    params = model.parameters()
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        raise InputError(f"optimizer: expected 'adam', 'adamw' or 'sgd', got {optimizer!r}.")
    gen = torch.Generator().manual_seed(seed)
    n = len(targets)
    with single_threaded(enabled=deterministic):
        for epoch in range(1, epochs + 1):
            model.train()
            perm = torch.randperm(n, generator=gen)
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                opt.zero_grad()
                loss_fn(model(*(a[idx] for a in args)), targets[idx]).backward()
                opt.step()
            if on_epoch is not None:
                model.eval()
                on_epoch(epoch, model)
    return model.eval()

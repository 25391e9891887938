"""Context managers around calls of the user's model. Package-internal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["eval_mode", "math_attention"]


def math_attention() -> contextlib.AbstractContextManager:
    """Scaled dot-product attention through its math backend: the fused CPU/GPU kernels have no double
    backward, the math backend is plain differentiable ops, so HVPs of attention models work."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover - torch < 2.3
        return contextlib.nullcontext()
    return sdpa_kernel([SDPBackend.MATH])


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """``model`` in eval mode inside the block; every module's own train/eval flag restored after it."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag

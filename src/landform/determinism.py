"""A section of code whose torch results do not depend on the machine's thread count.

CPU kernels split their work across the intra-op threads, and several (convolution backward, large
reductions) add partial sums in an order that depends on how many threads there are. Training a model for
a few epochs amplifies those last-bit differences into visibly different weights: the built-in digits CNN
trained with ``OMP_NUM_THREADS=1`` and ``=2`` differed by up to 0.06 in a weight and gave landscapes up to 0.68
apart. Inside :func:`single_threaded` every op runs on one thread with deterministic algorithms, so the same
seeded code gives bitwise the same tensors on any thread count (and on every torchrun rank).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["single_threaded"]


@contextlib.contextmanager
def single_threaded(enabled: bool = True) -> Iterator[None]:
    """Run the body on one intra-op thread with ``torch.use_deterministic_algorithms(True)``; restore both after.
    ``enabled=False`` runs it unchanged (for a caller's ``deterministic=False`` option).

    Examples
    --------
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with single_threaded():
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if not enabled:
        yield
        return
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
        torch.set_num_threads(threads)

"""Keep freed memory in the process, so that large CPU tensors stop costing page faults (glibc only).

glibc's ``malloc`` serves every allocation above its mmap threshold (128 KiB, adapting up to 32 MiB) with a
fresh ``mmap`` and hands it back to the kernel on ``free``. A full-batch loss or HVP of a CNN on a few thousand
images allocates activations of tens to hundreds of MiB in every pass, so every pass faults their pages in
again: on the MNIST CNN of ``examples/fit_regimes.py`` over 4,000 images on one thread the kernel's share of a
run's time exceeded the computation's (``python benchmarks/allocator.py``). :func:`keep_freed_memory` raises the
threshold to 1 GiB and stops trimming the heap, so freed blocks are reused instead of returned and re-faulted.
Numbers do not change; only where the memory comes from.

The cost is memory: blocks that mmap would have returned exactly come from the heap, whose holes do not always
fit the next block, and nothing goes back to the system before the process exits (the MNIST case's peak grew
1.57x, 1,518 to 2,389 MiB; the digits CNN's did not change). ``landform analyze`` and ``landform track`` call it unless ``LANDFORM_KEEP_FREED_MEMORY=0``; in a notebook
or your own script, call it yourself when the process does landform's work. Elsewhere (macOS, Windows, musl) it
does nothing and returns False.
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["keep_freed_memory", "ENV_VAR"]

#: Environment variable: ``0`` stops the command line from calling :func:`keep_freed_memory`.
ENV_VAR = "LANDFORM_KEEP_FREED_MEMORY"

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 1 << 30  # allocations above 1 GiB still get their own mapping
_applied = False


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse freed large blocks instead of returning them to the kernel (process-wide).

    Returns True once applied (Linux with glibc; calling it again is a no-op that returns True), False where it
    cannot apply (another C library or system), never raising.

    Examples
    --------
    >>> from landform.allocator import keep_freed_memory
    >>> keep_freed_memory() in (True, False)
    True
    """
    global _applied
    if _applied:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's soname on every Linux it runs on
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1
        ok = ok and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):
        return False
    _applied = bool(ok)
    return _applied


def keep_freed_memory_unless_disabled() -> bool:
    """:func:`keep_freed_memory` unless the environment variable :data:`ENV_VAR` is ``0`` (the CLI's call)."""
    if os.environ.get(ENV_VAR, "").strip() == "0":
        return False
    return keep_freed_memory()

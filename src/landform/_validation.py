"""Argument checks shared by the public entry points.

Each check returns the value converted to its canonical Python type, or raises :class:`InputError` with a
message that names the argument, says what was expected and what was received, and (where it helps) how to fix
it. ``bool`` is refused where a number is expected (``True`` is an ``int`` to Python, never what a user meant).
NaN/inf results are reported through :func:`check_finite_scalar` / :func:`check_finite_tensor`.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InputError, NonFiniteError

__all__ = [
    "check_int",
    "check_float",
    "check_choice",
    "check_fraction",
    "check_bool",
    "check_seed",
    "check_module",
    "check_objective",
    "check_finite_scalar",
    "check_finite_tensor",
    "check_path",
    "per_axis",
]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` within [minimum, maximum]; refuses bools, floats (even 2.0) and strings.

    Examples
    --------
    >>> check_int("n_samples", 3, minimum=1)
    3
    >>> check_int("n_samples", 2.5, minimum=1)
    Traceback (most recent call last):
    ...
    landform.errors.InputError: n_samples: expected an integer >= 1, got 2.5 (float); pass a whole number such as 2.
    """
    if minimum is not None and maximum is not None:
        bounds = f" in [{minimum}, {maximum}]"
    elif minimum is not None:
        bounds = f" >= {minimum}"
    elif maximum is not None:
        bounds = f" <= {maximum}"
    else:
        bounds = ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        hint = ""
        if isinstance(value, (float, np.floating)) and math.isfinite(value):
            hint = f"; pass a whole number such as {max(int(value), minimum or 0)}"
        raise InputError(
            f"{name}: expected an integer{bounds}, got {_show(value)} ({type(value).__name__}){hint}."
        )
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InputError(f"{name}: expected an integer{bounds}, got {value}.")
    return value


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
    allow_inf: bool = False,
) -> float:
    """``value`` as a finite ``float`` (a real number, not a bool or a string) with optional bounds.

    Examples
    --------
    >>> check_float("rho", 0.1, minimum=0.0)
    0.1
    >>> check_float("rho", "a", minimum=0.0)
    Traceback (most recent call last):
    ...
    landform.errors.InputError: rho: expected a finite real number >= 0.0, got 'a' (str).
    """
    op = ">" if strict_minimum else ">="
    bounds = []
    if minimum is not None:
        bounds.append(f"{op} {minimum}")
    if maximum is not None:
        bounds.append(f"<= {maximum}")
    want = "a finite real number" + (" " + " and ".join(bounds) if bounds else "")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        if hasattr(value, "numel") and value.numel() == 1 and getattr(value.dtype, "is_floating_point", False):
            value = float(value)  # a one-element torch tensor
        else:
            raise InputError(f"{name}: expected {want}, got {_show(value)} ({type(value).__name__}).")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise InputError(f"{name}: expected {want}, got {value}.")
    if minimum is not None and (value < minimum or (strict_minimum and value == minimum)):
        raise InputError(f"{name}: expected {want}, got {value}.")
    if maximum is not None and value > maximum:
        raise InputError(f"{name}: expected {want}, got {value}.")
    return value


def check_fraction(name: str, value: Any) -> float:
    """A number in (0, 1]."""
    return check_float(name, value, minimum=0.0, maximum=1.0, strict_minimum=True)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices`` (compared with ``==`` and the same type), else an InputError.

    Examples
    --------
    >>> check_choice("kind", "worst", ("average", "worst"))
    'worst'
    """
    for c in choices:
        if value is c or (c is not None and not isinstance(value, bool) and isinstance(value, type(c)) and value == c):
            return c
    listed = ", ".join(repr(c) for c in choices)
    raise InputError(f"{name}: expected one of {listed}, got {_show(value)}.")


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name}: expected True or False, got {_show(value)} ({type(value).__name__}).")
    return bool(value)


def check_seed(name: str, value: Any) -> int:
    """An integer seed >= 0 (bools and floats refused)."""
    return check_int(name, value, minimum=0)


def check_module(name: str, value: Any) -> Any:
    """A ``torch.nn.Module`` with at least one trainable parameter."""
    import torch

    if not isinstance(value, torch.nn.Module):
        raise InputError(
            f"{name}: expected a torch.nn.Module, got {type(value).__name__}; pass the model itself (not its "
            "state_dict, parameters or outputs)."
        )
    if not any(p.requires_grad for p in value.parameters()):
        raise InputError(f"{name}: the model has no trainable parameters (requires_grad=True); nothing to vary.")
    return value


def check_finite_scalar(what: str, value: float, hint: str) -> float:
    """``value`` unchanged if finite, else :class:`NonFiniteError` naming ``what`` and what to check."""
    value = float(value)
    if not math.isfinite(value):
        raise NonFiniteError(f"{what} is {value}; {hint}")
    return value


def check_finite_tensor(what: str, value: Any, hint: str) -> Any:
    """``value`` unchanged if every entry is finite, else :class:`NonFiniteError` with the count of bad ones."""
    if hasattr(value, "isfinite"):
        bad = int((~value.isfinite()).sum())
        total = int(value.numel())
    else:
        arr = np.asarray(value, dtype=np.float64)
        bad = int((~np.isfinite(arr)).sum())
        total = int(arr.size)
    if bad:
        raise NonFiniteError(f"{what} has {bad} NaN/inf entries of {total}; {hint}")
    return value


def check_objective(name: str, value: Any) -> Any:
    """A :class:`landform.Objective` (built from the model, data and loss)."""
    from .objective import Objective

    if not isinstance(value, Objective):
        raise InputError(
            f"{name}: expected a landform.Objective, got {type(value).__name__}; build one with "
            "Objective(model, data, loss_fn)."
        )
    return value


def check_path(name: str, value: Any) -> str | os.PathLike:
    """``value`` if it is a str or path-like, else an :class:`InputError` naming the argument.

    Examples
    --------
    >>> check_path("path", "runs/a")
    'runs/a'
    >>> check_path("path", 3)
    Traceback (most recent call last):
    ...
    landform.errors.InputError: path: expected a file or folder path (str or pathlib.Path), got 3.
    """
    if not isinstance(value, (str, os.PathLike)):
        raise InputError(f"{name}: expected a file or folder path (str or pathlib.Path), got {value!r}.")
    return value


def per_axis(value: Any, n: int, name: str) -> list[Any]:
    """``value`` repeated for ``n`` axes when it is one number or string, else its ``n`` entries.

    Examples
    --------
    >>> per_axis(1.0, 2, "span"), per_axis([1, (0, 2)], 2, "span")
    ([1.0, 1.0], [1, (0, 2)])
    """
    if isinstance(value, (int, float, np.integer, np.floating, str, bytes)):
        return [value] * n
    try:
        seq = list(value)
    except TypeError as exc:
        raise InputError(f"{name}: expected a number or a sequence of {n}, got {type(value).__name__}.") from exc
    if len(seq) != n:
        raise InputError(f"{name}: expected one entry per direction ({n}), got {len(seq)}.")
    return seq

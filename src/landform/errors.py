"""Exceptions raised by landform.

Every error that a user can cause is a :class:`LandformError`. Its message names the argument, what was
expected and what was received, and says what to change.
"""

from __future__ import annotations

__all__ = ["LandformError", "InputError", "StoreError", "NonFiniteError", "NonFiniteInputError"]


class LandformError(ValueError):
    """Base class of every error landform raises on purpose."""


class InputError(LandformError):
    """An argument has the wrong type, shape, device, dtype or value."""


class StoreError(LandformError):
    """An on-disk store is corrupt, foreign, or belongs to a different run."""


class NonFiniteError(LandformError):
    """NaN or inf where a finite number is required."""


class NonFiniteInputError(InputError, NonFiniteError):
    """An input array or tensor holds NaN or inf (both an input error and a non-finite error)."""

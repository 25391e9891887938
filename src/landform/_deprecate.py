"""Old argument names kept for one release with a :class:`DeprecationWarning`. Package-internal.

The names landform uses for each concept are listed in ``docs/api.md``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import InputError

__all__ = ["renamed_arguments", "rename_argument"]

F = TypeVar("F", bound=Callable[..., Any])


def rename_argument(where: str, kwargs: dict[str, Any], old: str, new: str, *, stacklevel: int = 3) -> None:
    """Move ``kwargs[old]`` to ``kwargs[new]`` with a DeprecationWarning (an error when both are given)."""
    if old not in kwargs:
        return
    if new in kwargs:
        raise InputError(f"{old}: given together with {new}, its new name; pass {new} only.")
    warnings.warn(
        f"{where}: the argument {old!r} is now called {new!r}; {old!r} still works in this release and will be "
        "removed in the next.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    kwargs[new] = kwargs.pop(old)


def renamed_arguments(**old_to_new: str) -> Callable[[F], F]:
    """Decorator: accept the keyword ``old`` as ``new`` for each ``old=new`` pair, with a DeprecationWarning.

    Examples
    --------
    >>> @renamed_arguments(n="dims")
    ... def f(dims): return dims
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     f(n=3), w[0].category.__name__
    (3, 'DeprecationWarning')
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                rename_argument(fn.__qualname__, kwargs, old, new)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate

"""Recipes: functions that return a model, its data and its loss for ``landform analyze``.

A recipe is a function with no required arguments returning a :class:`Recipe`, a ``(model, data, loss_fn)``
tuple, or a dict with those keys. ``landform analyze path/to/file.py`` calls the file's ``recipe()``;
``landform analyze pkg.module:function`` (or ``file.py:function``) calls the named function.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["Recipe", "load_recipe", "DEFAULT_RECIPE"]

DEFAULT_RECIPE = "landform.recipes.digits:recipe"


@dataclass
class Recipe:
    """A model with its data and loss. ``info`` holds anything to report (accuracy, training time...)."""

    model: Any
    data: Any
    loss_fn: Any
    name: str = "recipe"
    info: dict[str, Any] = field(default_factory=dict)


def _coerce(obj: Any, name: str) -> Recipe:
    if isinstance(obj, Recipe):
        return obj
    if isinstance(obj, dict) and {"model", "data", "loss_fn"} <= set(obj):
        return Recipe(obj["model"], obj["data"], obj["loss_fn"], obj.get("name", name), obj.get("info", {}))
    if isinstance(obj, (tuple, list)) and len(obj) == 3:
        return Recipe(obj[0], obj[1], obj[2], name)
    raise InputError(
        f"recipe {name!r}: it returned {type(obj).__name__}; a recipe must return a Recipe, a "
        "(model, data, loss_fn) tuple or a dict with keys model, data, loss_fn."
    )


def load_recipe(spec: str | None, **kwargs: Any) -> Recipe:
    """Resolve ``spec`` (``file.py``, ``file.py:func`` or ``module:func``; None = built-in digits CNN) and call it."""
    spec = spec or DEFAULT_RECIPE
    target, _, func_name = spec.partition(":")
    if target.endswith(".py") or Path(target).is_file():
        path = Path(target)
        if not path.is_file():
            raise InputError(f"recipe: file {target!r} does not exist.")
        mod_name = f"_landform_recipe_{abs(hash(str(path.resolve())))}"
        mod_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[mod_name] = module
        mod_spec.loader.exec_module(module)
        func_name = func_name or "recipe"
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise InputError(f"recipe: cannot import module {target!r} ({exc}).") from exc
        func_name = func_name or "recipe"
    func = getattr(module, func_name, None)
    if not callable(func):
        raise InputError(f"recipe: {target!r} has no function {func_name!r}.")
    return _coerce(func(**kwargs), spec)

"""Fingerprints of what a computed result depends on, one hash per component.

A stored landscape (and any other cached result) is reused only when every component it was computed from is
unchanged. :func:`fingerprint` returns a dict of SHA-256 hex digests:

``data``
    The full content of every batch, streamed: every input tensor (also inside tuple and dict inputs) and every
    target, with dtypes, shapes, the batch sizes and the batch order.
``loss``
    The loss function's identity by its code, not its name: bytecode, constants (nested code included), the
    names it uses, closure cell contents, default arguments, the globals its code references (tensors,
    numbers, functions, followed recursively), ``functools.partial`` arguments, bound ``self`` objects and, for
    an ``nn.Module`` loss, its class, state and hyperparameters (``CrossEntropyLoss(label_smoothing=...)``).
    Functions of installed libraries (torch, numpy, ...) are identified by module and qualified name.
``weights``
    The trainable parameters (``theta0``) with their names, shapes and dtypes, and the frozen parameters.
``buffers``
    The model's buffers (BatchNorm running statistics, ...).
``model``
    The model's structure: every submodule's class (its code, for classes not from an installed library),
    hyperparameters and hooks.
``directions``, ``axes``
    The direction vectors and the grid coordinates (only when given).

Two processes hashing the same objective get the same digests: nothing depends on memory addresses, the
process's string-hash seed or file paths. An object that holds state irrelevant to its values (a call counter,
a logger) may define ``__landform_fingerprint__(self)`` returning what identifies it instead.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import re
import site
import struct
import sys
import sysconfig
import types
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from .store import FINGERPRINT_COMPONENTS as COMPONENTS
from .store import describe_changes, fingerprint_changes

__all__ = ["fingerprint", "fingerprint_changes", "describe_changes", "COMPONENTS", "data_digest"]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_MAX_DEPTH = 64


def _library_roots() -> tuple[str, ...]:
    roots = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            roots.add(os.path.realpath(paths[key]))
    try:
        roots.update(os.path.realpath(p) for p in site.getsitepackages())
    except AttributeError:  # pragma: no cover - virtualenv's old site module
        pass
    user = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if user:
        roots.add(os.path.realpath(user))
    return tuple(sorted(roots))


_ROOTS = _library_roots()


@functools.lru_cache(maxsize=4096)
def _is_library_module(name: str | None) -> bool:
    """True for modules of installed packages and the standard library (identified by name, not code)."""
    if not name:
        return False
    top = name.split(".")[0]
    if top in ("torch", "numpy", "builtins") or top in getattr(sys, "stdlib_module_names", ()):
        return True
    mod = sys.modules.get(name)
    path = getattr(mod, "__file__", None)
    if path is None:
        return mod is not None and not name.startswith("__main__")  # built-in / namespace modules
    path = os.path.realpath(path)
    if os.sep + "site-packages" + os.sep in path or os.sep + "dist-packages" + os.sep in path:
        return True
    return any(path.startswith(root + os.sep) for root in _ROOTS)


class _Hasher:
    """Feeds a structured, type-tagged byte stream of Python/torch objects into one SHA-256."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.seen: dict[int, int] = {}
        self.keep: list[Any] = []  # keeps hashed objects alive so their ids stay unique

    def hexdigest(self) -> str:
        return self.h.hexdigest()

    def tag(self, text: str) -> None:
        b = text.encode()
        self.h.update(struct.pack("<Q", len(b)))
        self.h.update(b)

    # ------------------------------------------------------------------ leaves
    def tensor(self, t: torch.Tensor) -> None:
        t = t.detach()
        if t.layout != torch.strided:
            self.tag(f"sparse:{t.layout}")
            t = t.to_dense()
        self.tag(f"tensor:{t.dtype}:{tuple(t.shape)}")
        if t.is_conj():
            t = t.resolve_conj()
        if t.is_neg():
            t = t.resolve_neg()
        if t.device.type == "meta":
            return
        flat = t.cpu().contiguous().reshape(-1)
        if flat.numel():
            self.h.update(flat.view(torch.uint8).numpy())

    def array(self, a: np.ndarray) -> None:
        self.tag(f"ndarray:{a.dtype.str}:{a.shape}")
        if a.dtype == object:
            for v in a.ravel():
                self.value(v, 0)
        else:
            self.h.update(np.ascontiguousarray(a).view(np.uint8).ravel())

    # ------------------------------------------------------------------ generic values
    def value(self, obj: Any, depth: int) -> None:
        if obj is None or isinstance(obj, (bool, int, str, bytes)):
            self.tag(f"{type(obj).__name__}:{obj!r}")
            return
        if isinstance(obj, float):
            self.tag(f"float:{obj.hex() if math.isfinite(obj) else repr(obj)}")
            return
        if isinstance(obj, complex):
            self.tag(f"complex:{obj.real.hex()}:{obj.imag.hex()}")
            return
        if isinstance(obj, torch.Tensor):
            self.tensor(obj)
            return
        if isinstance(obj, np.ndarray):
            self.array(obj)
            return
        if isinstance(obj, np.generic):
            self.array(np.asarray(obj))
            return
        if isinstance(obj, (torch.dtype, torch.device, torch.layout, torch.memory_format)):
            self.tag(f"torch:{obj}")
            return
        if isinstance(obj, types.ModuleType):
            self.tag(f"module:{obj.__name__}")
            return
        if depth > _MAX_DEPTH:
            self.tag(f"deep:{type(obj).__qualname__}")
            return
        if isinstance(obj, type):
            self.cls(obj, depth + 1)
            return
        if isinstance(obj, tuple):  # immutable: hashed by content wherever it appears
            self.tag(f"tuple:{len(obj)}")
            for v in obj:
                self.value(v, depth + 1)
            return
        if isinstance(obj, (staticmethod, classmethod)):
            self.tag(type(obj).__name__)
            self.value(obj.__func__, depth + 1)
            return
        if isinstance(obj, property):
            self.tag("property")
            for f in (obj.fget, obj.fset, obj.fdel):
                self.value(f, depth + 1)
            return
        key = id(obj)
        if key in self.seen:  # a cycle or a shared object: refer to its first occurrence
            self.tag(f"ref:{self.seen[key]}")
            return
        self.seen[key] = len(self.seen)
        self.keep.append(obj)
        hook = getattr(type(obj), "__landform_fingerprint__", None)
        if hook is not None and not isinstance(obj, type):
            self.tag(f"custom:{type(obj).__qualname__}")
            self.value(hook(obj), depth + 1)
            return
        if isinstance(obj, list):
            self.tag(f"list:{len(obj)}")
            for v in obj:
                self.value(v, depth + 1)
            return
        if isinstance(obj, dict):
            self.tag(f"dict:{len(obj)}")
            for k, v in obj.items():
                self.value(k, depth + 1)
                self.value(v, depth + 1)
            return
        if isinstance(obj, (set, frozenset)):
            digests = sorted(_digest_of(v, depth + 1) for v in obj)
            self.tag(f"set:{','.join(digests)}")
            return
        if isinstance(obj, torch.Generator):
            self.tag("generator")
            self.tensor(obj.get_state())
            return
        if isinstance(obj, (types.FunctionType, types.MethodType, types.BuiltinFunctionType, functools.partial)):
            self.callable(obj, depth + 1)
            return
        if isinstance(obj, types.CodeType):
            self.code(obj, depth + 1)
            return
        if isinstance(obj, torch.nn.Module):
            self.cls(type(obj), depth + 1)
            self.state(vars(obj), depth + 1)
            return
        self.obj(obj, depth + 1)

    def state(self, attrs: dict[str, Any], depth: int) -> None:
        self.tag(f"attrs:{len(attrs)}")
        for k in sorted(attrs):
            self.tag(k)
            v = attrs[k]
            if k.startswith("_") and k.endswith(("hooks", "hooks_with_kwargs", "hooks_always_called")) and isinstance(
                v, dict
            ):
                v = list(v.values())  # hook dicts are keyed by a process-wide handle counter
            self.value(v, depth)

    def obj(self, obj: Any, depth: int) -> None:
        """An instance: its class, then its attributes (``__dict__`` and ``__slots__``), else its repr."""
        cls = type(obj)
        self.cls(cls, depth)
        attrs: dict[str, Any] = {}
        if dataclasses.is_dataclass(obj):
            attrs.update({f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)})
        d = getattr(obj, "__dict__", None)
        if isinstance(d, dict):
            attrs.update(d)
        for klass in cls.__mro__:
            for slot in getattr(klass, "__slots__", ()) if isinstance(getattr(klass, "__slots__", ()), Iterable) else ():
                if isinstance(slot, str) and slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                    attrs[slot] = getattr(obj, slot)
        if attrs:
            self.state(attrs, depth)
        else:
            try:
                text = repr(obj)
            except Exception:  # noqa: BLE001 - a broken __repr__ still gets a stable tag
                text = ""
            self.tag("repr:" + _ADDRESS.sub("0x?", text))

    # ------------------------------------------------------------------ code
    def cls(self, cls: type, depth: int) -> None:
        if _is_library_module(getattr(cls, "__module__", None)):
            self.tag(f"class:{cls.__module__}.{cls.__qualname__}")
            return
        # a user's class: its name and the code of its own methods (module names of recipe files vary by run)
        self.tag(f"userclass:{cls.__qualname__}")
        if id(cls) in self.seen:
            self.tag(f"ref:{self.seen[id(cls)]}")
            return
        self.seen[id(cls)] = len(self.seen)
        self.keep.append(cls)
        for base in cls.__bases__:
            self.cls(base, depth + 1)
        own = {
            k: v
            for k, v in vars(cls).items()
            if not (k.startswith("__") and k.endswith("__")) or k in ("__call__", "__init__")
        }
        self.state(own, depth + 1)

    def code(self, co: types.CodeType, depth: int) -> None:
        self.tag(f"code:{co.co_name}:{co.co_argcount}:{co.co_kwonlyargcount}:{co.co_flags}")
        self.h.update(co.co_code)
        self.tag("names:" + ",".join(co.co_names))
        self.tag("vars:" + ",".join(co.co_varnames) + "|" + ",".join(co.co_freevars) + "|" + ",".join(co.co_cellvars))
        self.tag(f"consts:{len(co.co_consts)}")
        for c in co.co_consts:
            if isinstance(c, types.CodeType):
                self.code(c, depth + 1)
            else:
                self.value(c, depth + 1)

    def callable(self, fn: Any, depth: int) -> None:
        if isinstance(fn, functools.partial):
            self.tag("partial")
            self.value(fn.func, depth)
            self.value(fn.args, depth)
            self.value(fn.keywords, depth)
            return
        if isinstance(fn, types.MethodType):
            self.tag("method")
            self.value(fn.__func__, depth)
            self.value(fn.__self__, depth)
            return
        module = getattr(fn, "__module__", None)
        qualname = getattr(fn, "__qualname__", getattr(fn, "__name__", type(fn).__name__))
        if not isinstance(fn, types.FunctionType) or _is_library_module(module):
            self_obj = getattr(fn, "__self__", None)
            self.tag(f"libfunc:{module}.{qualname}")
            if self_obj is not None and not isinstance(self_obj, types.ModuleType):
                self.value(self_obj, depth)
            return
        self.tag(f"func:{qualname}")
        self.code(fn.__code__, depth)
        self.value(fn.__defaults__, depth)
        self.value(fn.__kwdefaults__, depth)
        cells = fn.__closure__ or ()
        self.tag(f"closure:{len(cells)}")
        for cell in cells:
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell
                self.tag("emptycell")
                continue
            self.value(content, depth)
        g = fn.__globals__
        for name in sorted(_global_names(fn.__code__)):
            if name in g:
                self.tag(f"global:{name}")
                self.value(g[name], depth)


def _global_names(co: types.CodeType) -> set[str]:
    names = set(co.co_names)
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            names |= _global_names(c)
    return names


def _digest_of(obj: Any, depth: int = 0) -> str:
    h = _Hasher()
    h.value(obj, depth)
    return h.hexdigest()


def _callable_digest(fn: Any) -> str:
    h = _Hasher()
    if isinstance(fn, (types.FunctionType, types.MethodType, types.BuiltinFunctionType, functools.partial)):
        h.callable(fn, 0)
    else:
        h.value(fn, 0)
    return h.hexdigest()


def data_digest(batches: list[Any]) -> str:
    """Streamed hash of the full content of every batch (the objective's cached data)."""
    h = _Hasher()
    h.tag(f"batches:{len(batches)}")
    for b in batches:
        h.tag(f"batch:{b.n}")
        h.value(b.args, 0)
        h.value(b.kwargs, 0)
        h.value(b.target, 0)
    return h.hexdigest()


def _model_digest(model: torch.nn.Module) -> str:
    h = _Hasher()
    skip = {"_parameters", "_buffers", "_modules", "training"}
    for name, mod in model.named_modules(remove_duplicate=False):
        h.tag(f"module:{name}")
        h.cls(type(mod), 0)
        h.state({k: v for k, v in vars(mod).items() if k not in skip}, 0)
    return h.hexdigest()


def objective_fingerprint(objective: Any) -> dict[str, str]:
    """Component hashes of an :class:`~landform.Objective` (data, loss, weights, buffers, model)."""
    layout = objective.layout
    buffer_names = {n for n, _ in objective.model.named_buffers()}
    w = _Hasher()
    w.tag("trainable:" + ";".join(f"{n}:{tuple(s)}" for n, s in zip(layout.names, layout.shapes, strict=True)))
    w.tensor(objective.theta0)
    b = _Hasher()
    fixed = objective.fixed_state
    frozen = {n: v for n, v in fixed.items() if n not in buffer_names}
    w.value(frozen, 0)
    b.value({n: v for n, v in fixed.items() if n in buffer_names}, 0)
    return {
        "data": objective.data_digest,
        "loss": _callable_digest(objective.loss_fn),
        "weights": w.hexdigest(),
        "buffers": b.hexdigest(),
        "model": _model_digest(objective.model),
    }


def fingerprint(objective: Any, directions: Any = None, axes: Any = None) -> dict[str, str]:
    """Hashes of everything a result computed from ``objective`` (and ``directions``, ``axes``) depends on.

    Parameters
    ----------
    objective : Objective
    directions : Directions or torch.Tensor (n, P), optional
        Adds a ``"directions"`` component.
    axes : sequence of numpy.ndarray, optional
        Grid coordinates; adds an ``"axes"`` component.

    Returns
    -------
    dict of str to str
        One SHA-256 hex digest per component (see the module docstring and :data:`COMPONENTS`). Compare two
        with :func:`fingerprint_changes`.

    Examples
    --------
    >>> import torch
    >>> from landform import Objective
    >>> x, y = torch.arange(8.0).reshape(4, 2), torch.zeros(4, 1)
    >>> obj = Objective(torch.nn.Linear(2, 1), (x, y), torch.nn.functional.mse_loss)
    >>> sorted(fingerprint(obj))
    ['buffers', 'data', 'loss', 'model', 'weights']
    >>> y2 = y.clone(); y2[2] = 1.0
    >>> fingerprint_changes(fingerprint(obj), fingerprint(Objective(obj.model, (x, y2), obj.loss_fn)))
    ['data']
    """
    fp = objective_fingerprint(objective)
    if directions is not None:
        vecs = getattr(directions, "vectors", directions)
        h = _Hasher()
        h.tensor(torch.as_tensor(vecs))
        fp["directions"] = h.hexdigest()
    if axes is not None:
        h = _Hasher()
        h.tag(f"axes:{len(axes)}")
        for a in axes:
            h.array(np.asarray(a, dtype=np.float64))
        fp["axes"] = h.hexdigest()
    return fp

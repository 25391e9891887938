"""Checkpoints of a training run as input: modules, state dicts, or files.

A checkpoint is the weights of the objective's model at one moment of training. landform accepts a list of

- ``torch.nn.Module`` objects of the same architecture as the objective's model,
- state dicts (``model.state_dict()``),
- paths to files written with ``torch.save(model.state_dict(), path)`` (loaded with ``weights_only=True``, so
  a file never runs code) or, when the ``safetensors`` package is installed, ``.safetensors`` files,

or one string: a folder (every checkpoint file in it) or a glob pattern. Files found that way are sorted
naturally by the step number in their names (``step-2`` before ``step-10``); an explicit list keeps its order.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import InputError

__all__ = ["Checkpoint", "checkpoint_paths", "load_checkpoints", "checkpoint_thetas", "step_from_name"]

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")


@dataclass(frozen=True)
class Checkpoint:
    """The weights of one checkpoint.

    Attributes
    ----------
    name : str
        The file name, or ``"checkpoint <i>"`` for an object given in memory.
    step : int or None
        The last integer in the file name (``epoch-03.pt`` gives 3), or None.
    state : dict of str to torch.Tensor
        The full state dict (parameters and buffers), on the objective's device, floating tensors in its
        dtype.
    """

    name: str
    step: int | None
    state: dict[str, torch.Tensor]

    def fingerprint(self) -> str:
        """SHA-256 of the state's names and bytes (identifies the weights in resumable stores)."""
        h = hashlib.sha256()
        for k in sorted(self.state):
            t = self.state[k].detach().cpu().contiguous()
            h.update(k.encode())
            h.update(str(t.dtype).encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return h.hexdigest()


_LABELLED = (r"(?:global_step|iteration|iter|step)", r"epoch")


def step_from_name(name: str) -> int | None:
    """The training step in a file name's stem, or None.

    A number labelled ``step`` (also ``global_step``, ``iter``, ``iteration``; ``step=300``, ``step-300``,
    ``step_300``, ``step300``) wins, then one labelled ``epoch``, then the last integer of the stem that is not
    part of a decimal number, so that a metric in the name (``val_loss=0.35``, Lightning's
    ``epoch=2-step=300-val_loss=0.35.ckpt``) never decides the order.

    Examples
    --------
    >>> step_from_name("runs/ckpt_step1200.pt"), step_from_name("epoch-03.pt"), step_from_name("final.pt")
    (1200, 3, None)
    >>> step_from_name("epoch=2-step=300-val_loss=0.35.ckpt"), step_from_name("model_epoch5_acc0.91.pt")
    (300, 5)
    """
    stem = Path(name).name
    for suf in CHECKPOINT_SUFFIXES:
        if stem.endswith(suf):
            stem = stem[: -len(suf)]
            break
    for label in _LABELLED:
        found = re.findall(label + r"[=_\-]?(\d+)(?![\d.]*\d)", stem, flags=re.IGNORECASE)
        if found:
            return int(found[-1])
    nums = re.findall(r"\d+", re.sub(r"\d*\.\d+", " ", stem))
    return int(nums[-1]) if nums else None


def _natural_key(path: Path) -> tuple[Any, ...]:
    step = step_from_name(path.name)
    parts = tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.name))
    return (step is None, step if step is not None else 0, parts)


def checkpoint_paths(pattern: str | os.PathLike) -> list[Path]:
    """Checkpoint files named by a folder or a glob pattern, sorted by the step number in their names.

    Parameters
    ----------
    pattern : str or path
        A folder (its files ending in .pt, .pth, .bin, .ckpt or .safetensors) or a glob such as
        ``"runs/seed0/step-*.pt"``.

    Returns
    -------
    list of pathlib.Path
        Files without a number in their name come last, in name order.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for s in (10, 2, 1):
    ...     _ = (d / f"step-{s}.pt").write_bytes(b"")
    >>> [p.name for p in checkpoint_paths(d)]
    ['step-1.pt', 'step-2.pt', 'step-10.pt']
    """
    p = Path(pattern)
    if p.is_dir():
        files = [f for f in p.iterdir() if f.is_file() and f.name.endswith(CHECKPOINT_SUFFIXES)]
        where = f"folder {str(p)!r} has no files ending in {', '.join(CHECKPOINT_SUFFIXES)}"
    else:
        files = [Path(f) for f in glob.glob(str(pattern)) if Path(f).is_file()]
        where = f"pattern {str(pattern)!r} matches no file"
    if not files:
        raise InputError(f"checkpoints: {where}. Give a folder of checkpoints or a glob such as 'runs/step-*.pt'.")
    return sorted(files, key=_natural_key)


def _load_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError(f"checkpoints: file {str(path)!r} does not exist.")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise InputError(
                f"checkpoints: {path.name} is a safetensors file but the safetensors package is not installed "
                "(pip install safetensors)."
            ) from exc
        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:
            raise InputError(f"checkpoints: {path.name} is not a readable safetensors file ({exc}).") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(
            f"checkpoints: {path.name} cannot be loaded as a state dict with weights_only=True "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]}). Save checkpoints with "
            "torch.save(model.state_dict(), path), not the whole model."
        ) from exc
    return _as_state(obj, path.name)


def _as_state(obj: Any, name: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, torch.nn.Module):
        return dict(obj.state_dict())
    if isinstance(obj, dict) and obj and all(isinstance(k, str) for k in obj):
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        nested = [k for k, v in obj.items() if isinstance(v, dict)]
        hint = (
            f" It looks like a training checkpoint holding dicts under {nested[:4]}; pass the model's state "
            f"dict alone (e.g. ckpt[{nested[0]!r}])."
            if nested
            else ""
        )
        bad = next(k for k, v in obj.items() if not isinstance(v, torch.Tensor))
        raise InputError(
            f"checkpoints: {name} is not a state dict: its entry {bad!r} is a {type(obj[bad]).__name__}, not a "
            f"tensor.{hint}"
        )
    raise InputError(
        f"checkpoints: {name} is a {type(obj).__name__}, not a state dict; expected a torch.nn.Module, a state "
        "dict {name: tensor} or a file written by torch.save(model.state_dict(), path)."
    )


def _check_architecture(state: dict[str, torch.Tensor], ref: dict[str, torch.Tensor], name: str) -> None:
    for k, v in ref.items():
        if k not in state:
            prefix = ""
            if any(s.startswith("module.") for s in state):
                prefix = " Its keys start with 'module.' (saved from DistributedDataParallel): strip that prefix."
            raise InputError(
                f"checkpoints: {name} does not match the objective's model: the first differing key is {k!r}, "
                f"which the checkpoint lacks.{prefix}"
            )
        if tuple(state[k].shape) != tuple(v.shape):
            raise InputError(
                f"checkpoints: {name} does not match the objective's model: the first differing key is {k!r}, of "
                f"shape {tuple(state[k].shape)} in the checkpoint and {tuple(v.shape)} in the model."
            )
    for k in state:
        if k not in ref:
            raise InputError(
                f"checkpoints: {name} does not match the objective's model: the first differing key is {k!r}, "
                "which the model lacks."
            )


def load_checkpoints(
    checkpoints: Any,
    model: torch.nn.Module,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> list[Checkpoint]:
    """Load and check checkpoints against ``model``'s architecture.

    Parameters
    ----------
    checkpoints : str, path, or sequence of nn.Module / state dict / path
        A folder or glob (sorted by step number), or a list kept in its order (see the module docstring).
    model : torch.nn.Module
        The architecture: every checkpoint must have exactly its state-dict keys and shapes.
    device, dtype : optional
        Where to put the tensors (default: the device and floating dtype of ``model``'s parameters).
        Checkpoints on another device or in another floating dtype are moved there with a warning.

    Returns
    -------
    list of Checkpoint

    Raises
    ------
    InputError
        A file that is not a state dict, or an architecture that differs (the message names the first
        differing key).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(2, 1)
    >>> cks = load_checkpoints([net.state_dict(), torch.nn.Linear(2, 1)], net)
    >>> [c.name for c in cks], sorted(cks[0].state)
    (['checkpoint 0', 'checkpoint 1'], ['bias', 'weight'])
    """
    if isinstance(checkpoints, (str, os.PathLike)):
        checkpoints = checkpoint_paths(checkpoints)
    if isinstance(checkpoints, (torch.nn.Module, dict)) or not isinstance(checkpoints, Sequence):
        raise InputError(
            f"checkpoints: expected a folder, a glob or a list of modules, state dicts or paths, got "
            f"{type(checkpoints).__name__}."
        )
    ref = model.state_dict()
    first = next((p for p in model.parameters()), None)
    device = torch.device(device) if device is not None else (first.device if first is not None else torch.device("cpu"))
    dtype = dtype or (first.dtype if first is not None else torch.float32)
    out: list[Checkpoint] = []
    moved: list[str] = []
    for i, item in enumerate(checkpoints):
        if isinstance(item, (str, os.PathLike)):
            path = Path(item)
            name, step = path.name, step_from_name(path.name)
            state = _load_file(path)
            from_file = True
        else:
            name, step, from_file = f"checkpoint {i}", None, False
            state = _as_state(item, name)
        _check_architecture(state, ref, name)
        fixed = {}
        for k in ref:  # the model's key order
            t = state[k].detach()
            want_dtype = dtype if t.dtype.is_floating_point else t.dtype
            if t.device != device or t.dtype != want_dtype:
                if t.dtype != want_dtype or not from_file:  # files are read to the CPU first: no note for that
                    moved.append(f"{name} ({t.device}, {str(t.dtype).replace('torch.', '')})")
                t = t.to(device=device, dtype=want_dtype)
            fixed[k] = t
        out.append(Checkpoint(name, step, fixed))
    if moved:
        uniq = list(dict.fromkeys(moved))
        warnings.warn(
            f"checkpoints: {len(uniq)} checkpoint(s) were on another device or dtype and were moved to "
            f"{device}, {str(dtype).replace('torch.', '')}: {', '.join(uniq[:4])}{' ...' if len(uniq) > 4 else ''}.",
            stacklevel=2,
        )
    return out


def checkpoint_thetas(objective: Any, checkpoints: Any) -> tuple[torch.Tensor, list[Checkpoint]]:
    """Flat trainable-parameter vectors of the checkpoints, in the objective's order.

    Parameters
    ----------
    objective : Objective
    checkpoints : see :func:`load_checkpoints`, or a list of :class:`Checkpoint`

    Returns
    -------
    thetas : torch.Tensor, shape (K, P)
        On the objective's device and dtype; row ``i`` holds checkpoint ``i``'s trainable parameters in the
        order of ``objective.theta0``.
    checkpoints : list of Checkpoint

    Examples
    --------
    >>> import torch
    >>> from landform import Objective
    >>> net = torch.nn.Linear(2, 1)
    >>> obj = Objective(net, (torch.randn(4, 2), torch.randn(4, 1)), torch.nn.functional.mse_loss)
    >>> th, _ = checkpoint_thetas(obj, [net])
    >>> bool(torch.equal(th[0], obj.theta0))
    True
    """
    from ._validation import check_objective

    check_objective("objective", objective)
    if isinstance(checkpoints, (list, tuple)) and checkpoints and all(isinstance(c, Checkpoint) for c in checkpoints):
        cks = list(checkpoints)
    else:
        cks = load_checkpoints(checkpoints, objective.model, device=objective.device, dtype=objective.dtype)
    if not cks:
        raise InputError("checkpoints: the list is empty; give at least one checkpoint.")
    rows = [objective.layout.flatten({n: c.state[n] for n in objective.layout.names}) for c in cks]
    return torch.stack(rows), cks

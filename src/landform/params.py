"""Flat views of a model's trainable parameters.

landform works with one flat vector ``theta`` of length ``P`` over the trainable parameters, in the order of
``model.parameters()`` (shared parameters counted once). :class:`ParamLayout` converts between that vector
and the ``{name: tensor}`` dict that :func:`torch.func.functional_call` takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import InputError

__all__ = ["ParamLayout"]


@dataclass(frozen=True)
class ParamLayout:
    """Names, shapes and offsets of the trainable parameters of a model.

    Attributes
    ----------
    names : tuple of str
        Parameter names as ``model.named_parameters()`` gives them.
    shapes : tuple of torch.Size
    numels : tuple of int
    dtype, device
        Common dtype and device of the trainable parameters.
    """

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    numels: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device

    @classmethod
    def from_model(cls, model: torch.nn.Module) -> ParamLayout:
        if not isinstance(model, torch.nn.Module):
            raise InputError(f"model: expected a torch.nn.Module, got {type(model).__name__}.")
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise InputError(
                "model: it has no trainable parameters (every parameter has requires_grad=False, or it has "
                "none). landform perturbs trainable parameters; unfreeze the ones to study with "
                "p.requires_grad_(True)."
            )
        devices = {p.device for _, p in named}
        if len(devices) > 1:
            raise InputError(
                f"model: its trainable parameters lie on several devices ({sorted(map(str, devices))}); "
                "landform needs them on one device. Move the model with model.to(device)."
            )
        dtypes = {p.dtype for _, p in named}
        if len(dtypes) > 1:
            raise InputError(
                f"model: its trainable parameters have mixed dtypes ({sorted(map(str, dtypes))}); "
                "convert the model to one floating dtype, e.g. model.float()."
            )
        dtype = dtypes.pop()
        if not dtype.is_floating_point:
            raise InputError(f"model: trainable parameters must be floating point, got {dtype}.")
        return cls(
            names=tuple(n for n, _ in named),
            shapes=tuple(p.shape for _, p in named),
            numels=tuple(p.numel() for _, p in named),
            dtype=dtype,
            device=devices.pop(),
        )

    @property
    def size(self) -> int:
        """Total number of trainable scalars ``P``."""
        return int(sum(self.numels))

    def flatten(self, tensors: dict[str, torch.Tensor] | list[torch.Tensor]) -> torch.Tensor:
        """Concatenate per-parameter tensors (a dict by name or a list in order) into a flat (P,) vector."""
        if isinstance(tensors, dict):
            missing = [n for n in self.names if n not in tensors]
            extra = [n for n in tensors if n not in self.names]
            if missing or extra:
                raise InputError(
                    "direction dict: its keys must be the trainable parameter names; "
                    f"missing {missing[:5]}, unexpected {extra[:5]}."
                )
            tensors = [tensors[n] for n in self.names]
        if len(tensors) != len(self.names):
            raise InputError(f"expected {len(self.names)} tensors (one per trainable parameter), got {len(tensors)}.")
        parts = []
        for name, shape, t in zip(self.names, self.shapes, tensors, strict=True):
            t = torch.as_tensor(t)
            if t.shape != shape:
                raise InputError(f"tensor for parameter {name!r}: expected shape {tuple(shape)}, got {tuple(t.shape)}.")
            parts.append(t.reshape(-1).to(device=self.device, dtype=self.dtype))
        return torch.cat(parts)

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of a flat (P,) vector as ``{name: tensor}`` (differentiable; no copy)."""
        pieces = torch.split(theta, list(self.numels))
        return {n: piece.view(s) for n, s, piece in zip(self.names, self.shapes, pieces, strict=True)}

    def blocks(self) -> list[slice]:
        """Slices of the flat vector belonging to each parameter tensor."""
        out, start = [], 0
        for k in self.numels:
            out.append(slice(start, start + k))
            start += k
        return out

"""Directions that span a landscape's subspace.

A :class:`Directions` holds an (n, P) tensor of flat directions over an objective's trainable parameters
(the order of ``model.parameters()``) and the metadata that says where they came from. Every function that
takes directions also takes a plain (n, P) tensor, a (P,) tensor, or a list of per-parameter dicts.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._deprecate import renamed_arguments
from .errors import InputError
from .objective import Objective

__all__ = ["Directions", "random_directions", "as_directions", "NORMALIZATIONS"]

#: Per-tensor direction normalisations: Li et al.'s "filter"; "layer" (each tensor to the norm of the parameter
#: tensor, ||p||: landscaper's current source); "numel" (each tensor to norm sqrt(numel): landscaper 1.3.1's
#: release). With span_units="relative", "layer" or "numel" is the paper's geometry (docs/geometry.md).
NORMALIZATIONS = (None, "filter", "layer", "numel")


@dataclass(frozen=True)
class Directions:
    """Flat direction vectors and their provenance.

    Attributes
    ----------
    vectors : torch.Tensor, shape (n, P)
        One flat direction per row, on the objective's device and dtype.
    kind : str
        ``"random"``, ``"hessian"``, ``"pca"`` (:func:`landform.pca_directions`), ``"plane"``
        (:func:`landform.plane_directions`) or ``"user"``.
    normalization : str or None
        ``None`` (unit, orthonormal vectors: the axis coordinate is a distance in parameter space),
        ``"filter"`` (Li et al. 2018), ``"layer"`` (each tensor to ``||p||``, the reference package's current
        source) or ``"numel"`` (each tensor to ``sqrt(numel)``, its 1.3.1 release).
    seed : int or None
    eigenvalues : numpy.ndarray or None
        Hessian eigenvalues of the directions when ``kind == "hessian"``.
    extra : dict
        Anything else worth recording (JSON-serialisable).
    """

    vectors: torch.Tensor
    kind: str = "user"
    normalization: str | None = None
    seed: int | None = None
    eigenvalues: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def norms(self) -> np.ndarray:
        return self.vectors.double().norm(dim=1).cpu().numpy()

    def fingerprint(self) -> str:
        """SHA-256 of the vectors' bytes (identifies the subspace in stores)."""
        arr = self.vectors.detach().cpu().contiguous().numpy()
        return hashlib.sha256(arr.tobytes()).hexdigest()

    def metadata(self) -> dict[str, Any]:
        """JSON-serialisable description (vectors excluded)."""
        v = self.vectors.double()
        gram = (v @ v.T).cpu().numpy()
        return {
            "kind": self.kind,
            "n": self.n,
            "normalization": self.normalization,
            "seed": self.seed,
            "eigenvalues": None if self.eigenvalues is None else [float(x) for x in self.eigenvalues],
            "norms": [float(x) for x in self.norms],
            "max_abs_cosine": float(_max_offdiag_cosine(gram)),
            "fingerprint": self.fingerprint(),
            **self.extra,
        }


def _max_offdiag_cosine(gram: np.ndarray) -> float:
    d = np.sqrt(np.clip(np.diag(gram), 1e-300, None))
    c = gram / d[:, None] / d[None, :]
    np.fill_diagonal(c, 0.0)
    return float(np.abs(c).max()) if c.size else 0.0


def normalize_vector(objective: Objective, vec: torch.Tensor, normalization: str | None) -> torch.Tensor:
    """Scale one flat direction per filter ("filter") or per tensor ("layer": to ||p||; "numel": to sqrt(numel))."""
    if normalization is None:
        return vec
    theta0 = objective.theta0.to(vec.dtype)
    out = vec.clone()
    for sl, shape in zip(objective.layout.blocks(), objective.layout.shapes, strict=True):
        d = out[sl]
        p = theta0[sl]
        if normalization == "layer":
            dn = d.norm()
            out[sl] = d * (p.norm() / dn) if dn > 0 else d
        elif normalization == "numel":
            dn = d.norm()
            out[sl] = d * (math.sqrt(d.numel()) / dn) if dn > 0 else d
        elif len(shape) <= 1:
            # Li et al. 2018: biases and BatchNorm/LayerNorm weights (1-D tensors) are not perturbed.
            out[sl] = 0.0
        else:
            d2 = d.view(shape[0], -1)
            p2 = p.view(shape[0], -1)
            dn = d2.norm(dim=1, keepdim=True).clamp_min(1e-30)
            out[sl] = (d2 * (p2.norm(dim=1, keepdim=True) / dn)).reshape(-1)
    return out


@renamed_arguments(n="dims")
def random_directions(
    objective: Objective, dims: int, *, seed: int = 0, normalization: str | None = None, params: Any = None
) -> Directions:
    """Reproducible random directions.

    Gaussian vectors drawn on the CPU in float64 from ``torch.Generator().manual_seed(seed)`` (so the same
    seed gives the same directions on every device), orthonormalised by QR.

    Parameters
    ----------
    objective : Objective
    dims : int
        Number of directions, 1 <= dims < P (the old keyword ``n`` still works, with a DeprecationWarning).
    seed : int
    normalization : {None, "filter", "layer", "numel"}
        ``None``: orthonormal unit vectors, so an axis coordinate is a distance in parameter space.
        ``"filter"``: Li et al. 2018 filter normalisation: every filter (row along dim 0) of every
        parameter tensor with two or more dimensions is scaled to the norm of the same filter of the
        weights; 1-D tensors (biases, BatchNorm and LayerNorm weights) get zero, as in Li et al.'s
        ``ignore='biasbn'``. ``"layer"``: the reference package's convention, each tensor block scaled to
        the norm of that tensor (biases included; landscaper's current source). ``"numel"``: each tensor block
        scaled to norm ``sqrt(numel)`` (landscaper 1.3.1's release). Normalised directions are no longer orthonormal; their
        norms are recorded in the metadata.
    params : optional
        Parameter names, glob patterns or modules (:func:`landform.curvature.param_block`): the directions
        are drawn in that block only and are zero elsewhere (then ``dims`` must be below the block's size).

    Returns
    -------
    Directions
        ``.vectors`` has shape (dims, P).

    Examples
    --------
    >>> import torch
    >>> obj = Objective(torch.nn.Linear(4, 2), (torch.randn(5, 4), torch.randn(5, 2)), torch.nn.functional.mse_loss)
    >>> d = random_directions(obj, 2, seed=1)
    >>> d.vectors.shape
    torch.Size([2, 10])
    >>> bool(torch.allclose(d.vectors @ d.vectors.T, torch.eye(2), atol=1e-6))
    True
    """
    from ._validation import check_choice, check_int, check_objective
    from .curvature import param_block

    check_objective("objective", objective)
    block = param_block(objective, params)
    P = block.size
    if isinstance(dims, bool) or not isinstance(dims, (int, np.integer)) or dims < 1 or dims >= P:
        where = "the number of trainable parameters" if block.is_full else "the size of the params block"
        raise InputError(f"dims: expected an integer with 1 <= dims < P={P} ({where}), got {dims!r}.")
    check_int("seed", seed, minimum=0)
    check_choice("normalization", normalization, NORMALIZATIONS)
    gen = torch.Generator().manual_seed(int(seed))
    g = torch.randn(P, int(dims), generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r))[None, :]  # unique QR: deterministic signs
    vecs = block.embed(q.T.contiguous().to(block.index.device))
    if normalization is not None:
        vecs = torch.stack([normalize_vector(objective, v, normalization) for v in vecs])
        if not torch.isfinite(vecs).all():
            from .errors import NonFiniteError

            raise NonFiniteError(
                f"random_directions: {normalization}-normalised directions have NaN/inf entries because the model's "
                "parameters do; check the weights for NaN/inf (or use normalization=None)."
            )
    vecs = vecs.to(device=objective.device, dtype=objective.dtype)
    extra = {} if params is None else {"params": list(block.names)}
    return Directions(vecs, kind="random", normalization=normalization, seed=int(seed), extra=extra)


def as_directions(objective: Objective, directions: Any, n: int | None = None) -> Directions:
    """Validate user-given directions and wrap them as :class:`Directions`.

    Accepts a :class:`Directions`, an (n, P) or (P,) tensor or array, or a list of per-parameter dicts
    ``{name: tensor}`` with the trainable parameters' names and shapes.
    """
    from ._validation import check_objective

    check_objective("objective", objective)
    P = objective.num_params
    if directions is None:
        raise InputError("directions: got None; pass a Directions, e.g. random_directions(objective, 2).")
    if isinstance(directions, Directions):
        d = directions
        vecs = d.vectors
    else:
        d = None
        if isinstance(directions, dict):
            directions = [directions]
        if isinstance(directions, (list, tuple)) and directions and isinstance(directions[0], dict):
            vecs = torch.stack([objective.layout.flatten(dd) for dd in directions])
        else:
            try:
                vecs = torch.as_tensor(directions)
            except Exception as exc:
                raise InputError(
                    f"directions: expected an (n, P) tensor, a Directions or a list of per-parameter dicts, got "
                    f"{type(directions).__name__}."
                ) from exc
    if vecs.dim() == 1:
        vecs = vecs[None]
    if vecs.dim() != 2 or vecs.shape[1] != P:
        raise InputError(
            f"directions: expected shape (n, P) with P={P} trainable parameters, got {tuple(vecs.shape)}. "
            "Build them from the same objective (e.g. random_directions(objective, n))."
        )
    if n is not None and vecs.shape[0] != n:
        raise InputError(f"directions: expected {n} directions, got {vecs.shape[0]}.")
    if vecs.device != objective.device:
        raise InputError(
            f"directions: they are on {vecs.device}, the objective's parameters on {objective.device}; move "
            f"them with .to({str(objective.device)!r})."
        )
    if not vecs.dtype.is_floating_point:
        raise InputError(f"directions: expected a floating dtype, got {vecs.dtype}.")
    if not torch.isfinite(vecs).all():
        from .errors import NonFiniteInputError

        raise NonFiniteInputError("directions: they contain NaN or inf entries; pass finite direction vectors.")
    norms = vecs.double().norm(dim=1)
    if (norms == 0).any():
        raise InputError(f"directions: direction(s) {torch.nonzero(norms == 0).flatten().tolist()} are all zeros.")
    vecs = vecs.to(objective.dtype).contiguous()
    if d is not None:
        return Directions(vecs, d.kind, d.normalization, d.seed, d.eigenvalues, dict(d.extra))
    return Directions(vecs, kind="user")


_normalize = normalize_vector  # its name before other modules used it (kept for code written against it)

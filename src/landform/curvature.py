"""Curvature operators other than the Hessian, and parameter blocks.

An operator here is a function ``v -> C v`` on flat vectors, never a matrix:

- ``"hessian"``: ``H v`` of the dataset loss (:meth:`Objective.hvp`).
- ``"ggn"``: the generalised Gauss-Newton matrix ``G = sum_b w_b J_b^T H_out,b J_b`` (``J_b`` the Jacobian of
  the model's outputs on batch ``b`` with respect to the parameters, ``H_out,b`` the Hessian of the batch loss
  in those outputs, ``w_b = n_b / N`` the weights :class:`~landform.Objective` gives batches). For a loss that is
  the mean of per-sample losses this is ``(1/N) sum_i J_i^T H_out,i J_i``. One product costs a jvp through the
  model, a product with ``H_out`` by autograd in the outputs (exact for any loss of the outputs: cross-entropy,
  MSE, ...), and a vjp.
- ``"ef"``: the empirical Fisher ``EF = (1/N) sum_i g_i g_i^T``, ``g_i`` the gradient of sample ``i``'s loss
  ``loss_fn(model(x_i), y_i)``. Defined only when the batch loss is the mean of the per-sample losses (checked
  on the first batch). The per-sample losses are vectorised over samples with :func:`torch.func.vmap` where
  the model allows it (else a loop); ``EF v`` is then a jvp (``s_i = g_i . v``) and a vjp (``sum_i s_i g_i``),
  or, when the per-sample gradients fit in ``cache_mb``, two products with the cached (N, P) matrix of them.

A parameter block (``params=``) restricts any of them to the coordinates of some parameter tensors: the
operator ``C[S, S]`` on the block, whose vectors are zero outside it when embedded in the full space.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from ._context import eval_mode as _eval_mode
from ._context import math_attention as _math_attention
from ._data import Batch as _Batch
from .errors import InputError, LandformError, NonFiniteError
from .objective import Objective

if TYPE_CHECKING:
    from .eigenmap import EigenvalueMap

__all__ = [
    "CURVATURES",
    "ParamBlock",
    "CurvatureOperator",
    "param_block",
    "curvature_operator",
    "eigenvalue_map",
    "eigenvalue_map_axes",
    "layer_curvature",
]

CURVATURES = ("hessian", "ggn", "ef")


@dataclass(frozen=True, eq=False)
class ParamBlock:
    """A subset of an objective's trainable parameter tensors.

    Attributes
    ----------
    names : tuple of str
        The parameter names in the block, in the objective's order.
    index : torch.Tensor of int64, shape (p,)
        Positions of the block's scalars in the flat (P,) vector, increasing.
    total : int
        ``P``, the size of the full flat vector.
    """

    names: tuple[str, ...]
    index: torch.Tensor
    total: int

    @property
    def size(self) -> int:
        return int(self.index.numel())

    @property
    def is_full(self) -> bool:
        return self.size == self.total

    def restrict(self, full: torch.Tensor) -> torch.Tensor:
        """The block's entries of one (P,) vector or of the rows of a (k, P) matrix."""
        return full if self.is_full else full[..., self.index]

    def embed(self, part: torch.Tensor) -> torch.Tensor:
        """A (p,) or (k, p) block vector as (P,) or (k, P), zero outside the block."""
        if self.is_full:
            return part
        out = part.new_zeros((*part.shape[:-1], self.total))
        out[..., self.index] = part
        return out


def _available(names: Iterable[str], k: int = 8) -> str:
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:k])
    return shown + (f", ... ({len(names)} in all)" if len(names) > k else "")


def param_block(objective: Objective, params: Any = None) -> ParamBlock:
    """Resolve ``params`` to a :class:`ParamBlock` of ``objective``'s trainable parameters.

    Parameters
    ----------
    objective : Objective
    params : None, str, torch.nn.Module, or a list of them
        ``None``: every trainable parameter. A string is a parameter name or an :mod:`fnmatch` glob pattern
        (``"conv*"``, ``"layers.0.*"``); a module selects its trainable parameters (it must be a sub-module of
        the objective's model). Every item must select at least one parameter.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    >>> obj = Objective(model, (torch.randn(4, 3), torch.randn(4, 1)), torch.nn.functional.mse_loss)
    >>> b = param_block(obj, ["1.*"])
    >>> b.names, b.size
    (('1.weight', '1.bias'), 3)
    """
    layout = objective.layout
    total = layout.size
    if params is None:
        return ParamBlock(layout.names, torch.arange(total, device=objective.device), total)
    items = [params] if isinstance(params, (str, torch.nn.Module)) else params
    try:
        items = list(items)
    except TypeError:
        raise InputError(
            f"params: expected None, a parameter name or glob pattern, a module, or a list of them; got "
            f"{type(params).__name__}."
        ) from None
    if not items:
        raise InputError("params: the list is empty; pass None for all parameters or name some, e.g. ['fc.*'].")
    chosen: set[str] = set()
    by_id = {}
    for n, p in objective.model.named_parameters():
        by_id.setdefault(id(p), n)
    trainable = set(layout.names)
    for item in items:
        if isinstance(item, torch.nn.Module):
            found = {by_id.get(id(p)) for p in item.parameters()} & trainable
            if not found:
                raise InputError(
                    f"params: the module {type(item).__name__} has no trainable parameter of the objective's model "
                    "(pass a sub-module of that model, or parameter names such as "
                    f"{_available(layout.names, 4)})."
                )
        elif isinstance(item, str):
            found = {n for n in layout.names if n == item or fnmatch.fnmatchcase(n, item)}
            if not found:
                raise InputError(
                    f"params: {item!r} matches no trainable parameter. Available names: {_available(layout.names)}; "
                    "glob patterns such as 'fc.*' are accepted."
                )
        else:
            raise InputError(
                f"params: expected parameter names, glob patterns or modules, got an item of type "
                f"{type(item).__name__}."
            )
        chosen |= found
    parts = [
        torch.arange(sl.start, sl.stop) for n, sl in zip(layout.names, layout.blocks(), strict=True) if n in chosen
    ]
    names = tuple(n for n in layout.names if n in chosen)
    return ParamBlock(names, torch.cat(parts).to(objective.device), total)


# ---------------------------------------------------------------------------------------------- forward pieces
def _outputs(objective: Objective, theta: torch.Tensor, batch: _Batch) -> Any:
    """The model's outputs on ``batch`` at ``theta`` (the same call as the Objective's loss, without the loss)."""
    return objective.outputs(theta, batch)


def _split(batch: _Batch) -> tuple[list[Any], Any, list[bool]]:
    leaves, spec = tree_flatten((batch.args, batch.kwargs, batch.target))
    mapped = [isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] == batch.n for x in leaves]
    return leaves, spec, mapped


def _one_sample_loss(objective: Objective, theta: torch.Tensor, spec: Any, leaves: list[Any]) -> torch.Tensor:
    args, kwargs, target = tree_unflatten(leaves, spec)
    return objective.batch_loss(theta, _Batch(tuple(args), dict(kwargs), target, 1)).reshape(())


def _per_sample_losses_fn(
    objective: Objective, batch: _Batch, use_vmap: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``theta -> (n,)`` losses of each sample of ``batch`` evaluated as a batch of one."""
    leaves, spec, mapped = _split(batch)
    rows = [x for x, m in zip(leaves, mapped, strict=True) if m]

    def assemble(picked: Iterable[torch.Tensor]) -> list[Any]:
        it = iter(picked)
        return [next(it) if m else x for x, m in zip(leaves, mapped, strict=True)]

    if use_vmap:

        def one(theta: torch.Tensor, *row: torch.Tensor) -> torch.Tensor:
            return _one_sample_loss(objective, theta, spec, assemble(r.unsqueeze(0) for r in row))

        def losses(theta: torch.Tensor) -> torch.Tensor:
            return torch.func.vmap(one, in_dims=(None, *([0] * len(rows))))(theta, *rows)

        return losses

    def losses_loop(theta: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [_one_sample_loss(objective, theta, spec, assemble(r[i : i + 1] for r in rows)) for i in range(batch.n)]
        )

    return losses_loop


# ---------------------------------------------------------------------------------------------- the operator
class CurvatureOperator:
    """``v -> C[S, S] v`` for a curvature ``C`` of an objective and a parameter block ``S``.

    Call it on a block vector of length ``size`` (any float dtype; the result is float64 on the objective's
    device). ``n_products`` counts the products so far (each costs about one HVP).
    """

    def __init__(
        self,
        objective: Objective,
        curvature: str = "hessian",
        params: Any = None,
        *,
        mode: str = "rev",
        cache_mb: float = 256.0,
    ) -> None:
        if curvature not in CURVATURES:
            raise InputError(f"curvature: expected 'hessian', 'ggn' or 'ef', got {curvature!r}.")
        if mode not in ("rev", "fwd"):
            raise InputError(f"mode: expected 'rev' or 'fwd', got {mode!r}.")
        self.objective = objective
        self.curvature = curvature
        self.block = param_block(objective, params)
        self.mode = mode
        self.n_products = 0
        self._use_vmap: bool | None = None
        self._ef_cache: list[torch.Tensor] | None = None
        if curvature == "ef":
            self._check_ef(cache_mb)

    @property
    def size(self) -> int:
        return self.block.size

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        obj = self.objective
        if v.shape != (self.size,):
            raise InputError(f"v: expected shape ({self.size},), got {tuple(v.shape)}.")
        self.n_products += 1
        full = self.block.embed(v.to(device=obj.device, dtype=obj.dtype))
        if self.curvature == "hessian":
            out = obj.hvp(full, mode=self.mode)
        else:
            out = self._ggn(full) if self.curvature == "ggn" else self._ef(full)
            out = obj.allreduce(out)
            if not torch.isfinite(out).all():
                raise NonFiniteError(
                    f"curvature={self.curvature!r}: the product has {int((~torch.isfinite(out)).sum())} NaN/inf "
                    "entries; the model's outputs or loss are not finite at this point."
                )
        return self.block.restrict(out).to(torch.float64)

    # -------------------------------------------------------------- GGN
    def _ggn(self, v: torch.Tensor) -> torch.Tensor:
        obj = self.objective
        theta = obj.theta0.detach()
        out = torch.zeros_like(theta)
        with _eval_mode(obj.model), _math_attention():
            for batch, w in zip(obj.batches, obj.weights, strict=True):
                out += self._ggn_batch(theta, v, batch) * w
        return out

    def _ggn_batch(self, theta: torch.Tensor, v: torch.Tensor, batch: _Batch) -> torch.Tensor:
        """``J^T H_out J v`` on one batch: one forward pass; ``J v`` by double backward through a dummy
        cotangent (no forward-mode rules needed, and measured faster here than torch.func.jvp plus a second
        forward for the vjp), then ``J^T`` by a backward pass through the same graph."""
        t = theta.clone().requires_grad_(True)
        zl, zspec = tree_flatten(_outputs(self.objective, t, batch))
        mask = [isinstance(x, torch.Tensor) and x.requires_grad for x in zl]
        diff = [x for x, m in zip(zl, mask, strict=True) if m]
        if not diff:
            return torch.zeros_like(theta)
        us = [torch.zeros_like(x, requires_grad=True) for x in diff]
        (g,) = torch.autograd.grad(diff, t, us, create_graph=True)
        jv = torch.autograd.grad(g, us, v, allow_unused=True)
        it = iter(torch.zeros_like(x) if j is None else j for j, x in zip(jv, diff, strict=True))
        detached = [x.detach() if isinstance(x, torch.Tensor) else x for x in zl]
        u = [
            next(it) if m else (torch.zeros_like(x) if isinstance(x, torch.Tensor) else x)
            for x, m in zip(detached, mask, strict=True)
        ]
        hu = tree_flatten(self._loss_hvp_outputs(tree_unflatten(detached, zspec), tree_unflatten(u, zspec), batch))[0]
        hjv = [h for h, m in zip(hu, mask, strict=True) if m]
        (out,) = torch.autograd.grad(diff, t, hjv, allow_unused=True)
        return torch.zeros_like(theta) if out is None else out.detach()

    def _loss_hvp_outputs(self, z: Any, u: Any, batch: _Batch) -> Any:
        """``H_out u``: the Hessian of the batch loss in the model's outputs times ``u`` (double backward)."""
        zl, zspec = tree_flatten(z)
        ul, _ = tree_flatten(u)
        zs = [x.clone().requires_grad_(True) if x.is_floating_point() else x for x in zl]
        diff = [x for x in zs if x.requires_grad]
        loss = self.objective.loss_fn(tree_unflatten(zs, zspec), batch.target).reshape(())
        if not loss.requires_grad:
            raise InputError("loss_fn: the loss has no gradient path to the model's outputs (is it detached?).")
        grads = torch.autograd.grad(loss, diff, create_graph=True)
        uu = [ui for ui, x in zip(ul, zs, strict=True) if x.requires_grad]
        if not any(g.requires_grad for g in grads):  # loss linear in the outputs: H_out = 0
            hu = [torch.zeros_like(x) for x in diff]
        else:
            hu = torch.autograd.grad(grads, diff, uu, allow_unused=True)
            hu = [torch.zeros_like(x) if h is None else h for h, x in zip(hu, diff, strict=True)]
        it = iter(hu)
        full = [next(it).detach() if x.requires_grad else torch.zeros_like(x) for x in zs]
        return tree_unflatten(full, zspec)

    # -------------------------------------------------------------- EF
    def _losses_fn(self, batch: _Batch) -> Callable[[torch.Tensor], torch.Tensor]:
        return _per_sample_losses_fn(self.objective, batch, bool(self._use_vmap))

    def _check_ef(self, cache_mb: float) -> None:
        obj = self.objective
        batch = obj.batches[0]
        theta = obj.theta0.detach()
        with torch.no_grad(), _eval_mode(obj.model):
            whole = float(obj.batch_loss(theta, batch))
            per = None
            try:
                per = _per_sample_losses_fn(obj, batch, True)(theta)
                self._use_vmap = True
            except Exception:  # the model cannot be vmapped over samples: loop
                self._use_vmap = False
            if per is None:
                try:
                    per = _per_sample_losses_fn(obj, batch, False)(theta)
                except Exception as exc:
                    raise LandformError(
                        f"curvature='ef': loss_fn cannot be evaluated on one sample at a time ({type(exc).__name__}: "
                        f"{str(exc)[:160]}). The empirical Fisher needs per-sample losses; use curvature='ggn' "
                        "instead, or a loss_fn that accepts a batch of one."
                    ) from exc
        mean = float(per.double().mean())
        tol = 1e-4 * max(1.0, abs(whole)) if obj.dtype != torch.float64 else 1e-9 * max(1.0, abs(whole))
        if per.shape != (batch.n,) or not abs(mean - whole) <= tol:
            raise LandformError(
                f"curvature='ef': the loss of the first batch ({whole:.6g}) is not the mean of its per-sample losses "
                f"({mean:.6g}), so the empirical Fisher (mean of per-sample gradient outer products) is undefined for "
                "this loss_fn. Use a loss that averages per-sample losses (reduction='mean'; no batch-level terms such "
                "as sum reductions or regularisers computed over the batch), or use curvature='ggn'."
            )
        need = obj.num_samples * obj.num_params * 8 / 2**20
        if need <= cache_mb:
            with _eval_mode(obj.model), _math_attention():
                self._ef_cache = [self._jacobian(theta, b).to(torch.float64) for b in obj.batches]

    def _jacobian(self, theta: torch.Tensor, batch: _Batch) -> torch.Tensor:
        losses = self._losses_fn(batch)
        try:
            return torch.func.jacrev(losses)(theta).detach()
        except (RuntimeError, NotImplementedError):
            t = theta.clone().requires_grad_(True)
            per = losses(t)
            return torch.stack([torch.autograd.grad(per[i], t, retain_graph=True)[0] for i in range(per.numel())])

    def _ef(self, v: torch.Tensor) -> torch.Tensor:
        obj = self.objective
        n_total = obj.num_samples
        if self._ef_cache is not None:
            vd = v.to(torch.float64)
            out = sum(Jb.T @ (Jb @ vd) for Jb in self._ef_cache) / n_total
            return out.to(obj.dtype)
        theta = obj.theta0.detach()
        out = torch.zeros_like(theta)
        with _eval_mode(obj.model), _math_attention():
            for batch in obj.batches:
                losses = self._losses_fn(batch)
                t = theta.clone().requires_grad_(True)
                per = losses(t)
                u = torch.zeros_like(per, requires_grad=True)
                (g,) = torch.autograd.grad(per, t, u, create_graph=True)
                (s,) = torch.autograd.grad(g, u, v)  # s_i = g_i . v
                (gs,) = torch.autograd.grad(per, t, s.detach())
                out += gs.detach()
        return out / n_total


def curvature_operator(
    objective: Objective, curvature: str = "hessian", params: Any = None, *, mode: str = "rev"
) -> CurvatureOperator:
    """The curvature operator ``v -> C v`` restricted to a parameter block (see the module docstring).

    Parameters
    ----------
    objective : Objective
    curvature : {"hessian", "ggn", "ef"}
        Hessian, generalised Gauss-Newton, or empirical Fisher of the dataset loss.
    params : optional
        A parameter block (see :func:`param_block`); default all trainable parameters.
    mode : {"rev", "fwd"}
        HVP mode for the Hessian (see :meth:`Objective.hvp`).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 1)
    >>> x, y = torch.randn(16, 3), torch.randn(16, 1)
    >>> obj = Objective(model, (x, y), torch.nn.functional.mse_loss)
    >>> G, H = curvature_operator(obj, "ggn"), curvature_operator(obj, "hessian")
    >>> v = torch.randn(4, dtype=torch.float64)
    >>> bool(torch.allclose(G(v), H(v), atol=1e-5))   # a linear model under MSE: GGN == Hessian
    True
    """
    return CurvatureOperator(objective, curvature, params, mode=mode)


def _at(objective: Objective, theta: torch.Tensor) -> Objective:
    """The same objective (model, data, loss shared, nothing copied) expanded around ``theta`` instead."""
    return objective.expanded_at(theta)


def eigenvalue_map(
    objective: Objective,
    directions: Any,
    *,
    span: Any = 1.0,
    resolution: Any = 5,
    which: Sequence[str] = ("LA",),
    curvature: str = "hessian",
    params: Any = None,
    tol: float = 1e-3,
    max_hvp: int = 60,
    seed: int = 0,
    verbose: bool = True,
    axes: Sequence[Any] | None = None,
) -> EigenvalueMap:
    """The top (``"LA"``) and optionally the bottom (``"SA"``) curvature eigenvalue at every point of a grid.

    At each point ``theta0 + sum_i a_i d_i`` of the grid (:func:`landform.grid_axes`) Lanczos runs on the
    curvature there (:func:`landform.hessian_eigenpairs` with ``k=1``). The cost is about
    ``points x len(which) x (Lanczos steps + 1)`` HVPs, at most ``max_hvp + 1`` per eigenvalue; it is printed
    before the run (as that bound) and after it (as spent), and recorded in ``n_hvp``. Keep the grid coarse
    (5 x 5 is 25 Lanczos runs per eigenvalue).

    Parameters
    ----------
    objective : Objective
    directions : Directions or (n, P) tensor
        The landscape's directions.
    span, resolution
        The grid, as in :func:`landform.grid_landscape` (use the landscape's span and a smaller resolution).
    which : sequence of {"LA", "SA"}
        Largest and/or smallest eigenvalue.
    curvature, params
        The operator and its parameter block (see :func:`landform.hessian_eigenpairs`).
    tol : float
        Relative residual each eigenpair is iterated to (a map needs about 3 digits).
    max_hvp : int
        Lanczos budget per eigenvalue; a point that does not converge within it keeps its best estimate (its
        residual is in ``residuals``) with a warning.
    verbose : bool
        Print the cost to stderr.
    axes : sequence of 1-D arrays, optional
        The grid's coordinates, one array per direction, instead of ``span`` and ``resolution`` (e.g. a
        sub-grid of a landscape's own axes, :func:`eigenvalue_map_axes`).

    Returns
    -------
    EigenvalueMap

    Examples
    --------
    >>> import torch
    >>> from landform import random_directions
    >>> torch.manual_seed(0) and None
    >>> obj = Objective(torch.nn.Linear(3, 1), (torch.randn(16, 3), torch.randn(16, 1)), torch.nn.functional.mse_loss)
    >>> em = eigenvalue_map(obj, random_directions(obj, 2), span=1.0, resolution=3, verbose=False)
    >>> em.values["LA"].shape, bool(em.values["LA"].std() < 1e-5)  # a quadratic loss: the same Hessian everywhere
    ((3, 3), True)
    """
    import sys
    import time
    import warnings

    from .directions import as_directions
    from .eigenmap import EigenvalueMap
    from .evaluate import grid_axes
    from .hessian import hessian_eigenpairs

    which = (which,) if isinstance(which, str) else tuple(which)
    if not which or any(w not in ("LA", "SA") for w in which) or len(set(which)) != len(which):
        raise InputError(f"which: expected 'LA', 'SA' or both, e.g. ('LA', 'SA'); got {which!r}.")
    if curvature not in CURVATURES:
        raise InputError(f"curvature: expected 'hessian', 'ggn' or 'ef', got {curvature!r}.")
    if isinstance(max_hvp, bool) or not isinstance(max_hvp, int) or max_hvp < 2:
        raise InputError(f"max_hvp: expected an integer >= 2, got {max_hvp!r}.")
    d = as_directions(objective, directions)
    if axes is None:
        axes = grid_axes(span, resolution, d.n)
    else:
        axes = tuple(np.asarray(a, dtype=np.float64) for a in axes)
        if len(axes) != d.n or any(a.ndim != 1 or a.size < 1 or not np.isfinite(a).all() for a in axes):
            raise InputError(
                f"axes: expected {d.n} finite 1-D coordinate arrays (one per direction), got "
                f"{[a.shape for a in axes]}."
            )
    shape = tuple(len(a) for a in axes)
    total = int(np.prod(shape))
    if verbose:
        print(
            f"eigenvalue_map: {total} points x {len(which)} eigenvalue(s), Lanczos of at most {max_hvp} HVPs each "
            f"(+1 residual check): at most {total * len(which) * (max_hvp + 1):,} HVPs",
            file=sys.stderr,
        )
    vals = {w: np.full(shape, np.nan) for w in which}
    res = {w: np.full(shape, np.nan) for w in which}
    spent = 0
    t0 = time.perf_counter()
    mesh = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per-point convergence warnings are summed up below
        for flat, coords in enumerate(mesh):
            a = torch.as_tensor(coords, dtype=objective.dtype, device=objective.device)
            here = _at(objective, objective.theta0 + a @ d.vectors)
            idx = np.unravel_index(flat, shape)
            for w in which:
                ep = hessian_eigenpairs(
                    here, 1, which=w, tol=tol, seed=seed, max_hvp=max_hvp, curvature=curvature, params=params
                )
                vals[w][idx] = ep.values[0]
                res[w][idx] = ep.residuals[0]
                spent += ep.n_hvp + ep.n_hvp_check
    n_bad = sum(int((r > tol).sum()) for r in res.values())
    if n_bad:
        warnings.warn(
            f"eigenvalue_map: {n_bad} eigenvalue(s) did not reach tol={tol} within max_hvp={max_hvp} (worst residual "
            f"{max(float(np.nanmax(r)) for r in res.values()):.2g}); raise max_hvp for those points.",
            stacklevel=2,
        )
    elapsed = time.perf_counter() - t0
    if verbose:
        print(f"eigenvalue_map: spent {spent:,} HVPs in {elapsed:.1f} s", file=sys.stderr)
    return EigenvalueMap(
        axes=axes,
        values=vals,
        residuals=res,
        n_hvp=spent,
        curvature=curvature,
        directions=d.metadata(),
        provenance={
            "num_params": objective.num_params,
            "num_samples": objective.num_samples,
            "tol": tol,
            "max_hvp": max_hvp,
            "seed": seed,
            "params": None if params is None else list(param_block(objective, params).names),
            "elapsed_s": elapsed,
        },
    )


def eigenvalue_map_axes(axes: Sequence[Any], points: int) -> tuple[np.ndarray, ...]:
    """A coarse sub-grid of a landscape's grid: ``points`` coordinates per axis taken from ``axes`` itself.

    The indices ``round(linspace(0, n - 1, points))`` of each axis: both edges always, the centre when ``n`` and
    ``points`` are odd; an axis with fewer than ``points`` coordinates is taken whole. The map's points are
    then grid points of the landscape, so its contour lies on the landscape's coordinates.

    Examples
    --------
    >>> [a.tolist() for a in eigenvalue_map_axes([np.linspace(-1, 1, 41), np.linspace(0, 2, 3)], 5)]
    [[-1.0, -0.5, 0.0, 0.5, 1.0], [0.0, 1.0, 2.0]]
    """
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
        raise InputError(f"points: expected an integer >= 2 (points per axis of the map), got {points!r}.")
    out = []
    for a in axes:
        a = np.asarray(a, dtype=np.float64)
        idx = np.unique(np.round(np.linspace(0, a.size - 1, min(int(points), a.size))).astype(int))
        out.append(a[idx])
    return tuple(out)


def layer_curvature(
    objective: Objective,
    *,
    layers: dict[str, Any] | None = None,
    curvature: str = "hessian",
    trace_hvp: int = 30,
    tol: float = 1e-3,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Top eigenvalue and trace of the curvature restricted to each layer.

    Parameters
    ----------
    objective : Objective
    layers : dict of str to params spec, optional
        ``{label: params}`` (names, glob patterns or modules, as ``params=`` takes). Default: one block per
        module that owns trainable parameters directly (``"conv1"`` holds ``conv1.weight`` and ``conv1.bias``).
    curvature : {"hessian", "ggn", "ef"}
    trace_hvp : int
        HVPs of each Hutch++ trace (a block of p <= trace_hvp / 3 parameters gets the exact trace).
    tol : float
        Relative residual of each top eigenpair.

    Returns
    -------
    list of dict
        One row per layer: ``layer``, ``params`` (names), ``size``, ``top_eigenvalue``, ``residual``, ``trace``,
        ``trace_stderr``, ``n_hvp`` (the layer's products in all).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    >>> obj = Objective(model, (torch.randn(20, 3), torch.randint(0, 2, (20,))), torch.nn.functional.cross_entropy)
    >>> [(r["layer"], r["size"]) for r in layer_curvature(obj, trace_hvp=6)]
    [('0', 16), ('2', 10)]
    """
    from .hessian import hessian_eigenpairs, hessian_trace

    if layers is None:
        layers = {}
        for name in objective.layout.names:
            layers.setdefault(name.rpartition(".")[0] or name, []).append(name)
    if not isinstance(layers, dict) or not layers:
        raise InputError("layers: expected a non-empty dict {label: params}, e.g. {'conv': ['conv1.*']}.")
    rows = []
    for label, spec in layers.items():
        block = param_block(objective, spec)
        row: dict[str, Any] = {"layer": str(label), "params": list(block.names), "size": block.size}
        n = 0
        if block.size >= 2:
            ep = hessian_eigenpairs(
                objective, 1, tol=tol, seed=seed, curvature=curvature, params=spec, max_hvp=min(block.size, 60)
            )
            row["top_eigenvalue"], row["residual"] = float(ep.values[0]), float(ep.residuals[0])
            n += ep.n_hvp + ep.n_hvp_check
        else:  # one scalar: its 1 x 1 block is its eigenvalue
            op = CurvatureOperator(objective, curvature, spec)
            row["top_eigenvalue"], row["residual"] = float(op(torch.ones(1, dtype=torch.float64))[0]), 0.0
            n += 1
        if block.size * 3 <= trace_hvp:
            op = CurvatureOperator(objective, curvature, spec)
            eye = torch.eye(block.size, dtype=torch.float64, device=objective.device)
            row["trace"], row["trace_stderr"] = float(sum(float(op(e)[i]) for i, e in enumerate(eye))), 0.0
            n += block.size
        else:
            tr = hessian_trace(objective, n_hvp=max(3, trace_hvp), seed=seed, curvature=curvature, params=spec)
            row["trace"], row["trace_stderr"] = tr.value, tr.stderr
            n += tr.n_hvp
        row["n_hvp"] = n
        rows.append(row)
    return rows

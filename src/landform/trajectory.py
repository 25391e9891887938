"""Training trajectories in a landscape: PCA directions of checkpoints, projections, planes and linear paths.

The objective's parameters ``theta0`` are the final point of the trajectory; every checkpoint ``i`` gives the
trainable-parameter vector ``theta_i`` (see :mod:`landform.checkpoints` for what a checkpoint may be).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np
import torch

from ._deprecate import renamed_arguments
from .checkpoints import Checkpoint, checkpoint_thetas
from .directions import Directions, as_directions, normalize_vector
from .errors import InputError, NonFiniteError
from .landscape import Landscape
from .objective import Objective
from .projection import Trajectory

__all__ = ["pca_directions", "project_trajectory", "plane_directions", "linear_path"]


@renamed_arguments(n="dims")
def pca_directions(
    objective: Objective, checkpoints: Any, dims: int = 2, *, normalization: str | None = None
) -> Directions:
    """Principal directions of a training trajectory (Li et al. 2018).

    The rows ``theta_i - theta0`` (``theta0``: the objective's parameters, the final point) are stacked into
    a (K, P) matrix ``M``; with the thin SVD ``M = U S V^T`` the directions are the first ``dims`` rows of
    ``V^T`` and ``explained_variance_ratio[k] = s_k^2 / sum_j s_j^2``. Each direction's sign is chosen so that
    the first checkpoint has a negative coordinate along it (training moves towards +x and +y).

    Parameters
    ----------
    objective : Objective
        Its trainable parameters are the final point of the trajectory.
    checkpoints : folder, glob, or list of modules / state dicts / paths
        At least 2, in training order (see :func:`landform.checkpoints.load_checkpoints`).
    dims : int
        Number of directions, 1 <= dims <= K - 1 (old keyword: ``n``, deprecated).
    normalization : {None, "filter"}
        ``None``: orthonormal unit vectors (an axis coordinate is a distance in parameter space).
        ``"filter"``: each direction rescaled filter by filter to the weights' filter norms, 1-D tensors zeroed
        (as :func:`landform.random_directions`); the vectors are then no longer orthonormal.

    Returns
    -------
    Directions
        ``kind="pca"``; ``extra`` holds ``explained_variance_ratio`` (dims floats), ``singular_values``,
        ``n_checkpoints``, ``checkpoints`` (names) and ``steps``.

    Examples
    --------
    >>> import torch
    >>> from landform import Objective
    >>> net = torch.nn.Linear(3, 1)
    >>> obj = Objective(net, (torch.randn(8, 3), torch.randn(8, 1)), torch.nn.functional.mse_loss)
    >>> cks = [{k: v + 0.1 * s for k, v in net.state_dict().items()} for s in (3, 2, 1)]
    >>> d = pca_directions(obj, cks, dims=1)
    >>> d.kind, round(d.extra["explained_variance_ratio"][0], 6)
    ('pca', 1.0)
    """
    if normalization not in (None, "filter"):
        raise InputError(f"normalization: expected None or 'filter', got {normalization!r}.")
    thetas, cks = checkpoint_thetas(objective, checkpoints)
    K = thetas.shape[0]
    if K < 2:
        raise InputError(
            f"checkpoints: PCA of a trajectory needs at least 2 checkpoints, got {K}. Save the weights at more "
            "steps of training."
        )
    if isinstance(dims, bool) or not isinstance(dims, (int, np.integer)) or dims < 1 or dims > K - 1:
        raise InputError(
            f"dims: expected an integer with 1 <= dims <= (number of checkpoints - 1) = {K - 1}, got {dims!r}. Give more "
            "checkpoints or fewer directions."
        )
    if dims >= objective.num_params:
        raise InputError(f"dims: expected dims < P={objective.num_params}, got {dims}.")
    M = thetas.double() - objective.theta0.double()[None, :]
    if not torch.isfinite(M).all():
        raise NonFiniteError("checkpoints: some checkpoint's parameters contain NaN or inf.")
    _, s, vh = torch.linalg.svd(M, full_matrices=False)
    total = float((s**2).sum())
    if total == 0.0:
        raise InputError("checkpoints: every checkpoint equals the objective's parameters; the trajectory has no extent.")
    if float(s[dims - 1]) <= 1e-12 * float(s[0]):
        rank = int((s > 1e-12 * s[0]).sum())
        raise InputError(
            f"dims: the trajectory spans only {rank} dimension(s) (checkpoints coincide or lie on a line); "
            f"ask for dims <= {rank}."
        )
    vecs = vh[:dims].clone()
    first = M[0] @ vecs.T  # coordinate of the first checkpoint along each direction
    for k in range(dims):
        sign = torch.sign(first[k])
        if sign == 0:
            sign = torch.sign(vecs[k][torch.argmax(vecs[k].abs())])
        vecs[k] = -vecs[k] * sign if sign > 0 else vecs[k]
    if normalization is not None:
        vecs = torch.stack([normalize_vector(objective, v, normalization) for v in vecs])
    ratio = (s**2 / total).cpu().numpy()
    extra = {
        "explained_variance_ratio": [float(x) for x in ratio[:dims]],
        "singular_values": [float(x) for x in s.cpu().numpy()],
        "n_checkpoints": int(K),
        "checkpoints": [c.name for c in cks],
        "steps": [c.step for c in cks],
    }
    return Directions(
        vecs.to(device=objective.device, dtype=objective.dtype).contiguous(),
        kind="pca",
        normalization=normalization,
        extra=extra,
    )


def _least_squares(D: torch.Tensor, R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates C (K, n) minimising ||R - C D|| row by row, and the residual norms (K,), in float64."""
    q, r = torch.linalg.qr(D.T)  # (P, n), (n, n)
    if float(torch.abs(torch.diagonal(r)).min()) <= 1e-12 * float(torch.abs(torch.diagonal(r)).max()):
        raise InputError("directions: they are linearly dependent; the projection is not unique.")
    coords = torch.linalg.solve_triangular(r, (R @ q).T, upper=True).T
    resid = R - coords @ D
    return coords, resid.norm(dim=1)


def project_trajectory(objective: Objective, directions: Any, checkpoints: Any) -> Trajectory:
    """Coordinates, losses and off-plane distances of checkpoints in the subspace of ``directions``.

    Parameters
    ----------
    objective : Objective
        The subspace is ``theta0 + span(directions)`` with ``theta0`` the objective's parameters.
    directions : Directions or (n, P) tensor
        Any directions of this objective (PCA, Hessian, random...); they need not be orthonormal.
    checkpoints : folder, glob, or list of modules / state dicts / paths / Checkpoint

    Returns
    -------
    Trajectory
        ``coords`` (K, n): least-squares coordinates (exact projection for orthonormal directions);
        ``loss``: each checkpoint's true loss, the checkpoint model evaluated as it is, **with its own buffers
        and frozen parameters** (e.g. its BatchNorm running statistics) on the objective's data.
        ``projected_loss``: the objective's loss at ``theta0 + coords @ D`` (with the objective's buffers: the
        value the landscape shows there). For a model without buffers the two differ only through the
        off-plane displacement; with BatchNorm also through the running statistics. ``off_plane``: the
        residual norm; ``distance``: ``||theta_i - theta0||``.

    Examples
    --------
    >>> import torch
    >>> from landform import Objective, random_directions
    >>> net = torch.nn.Linear(3, 1)
    >>> obj = Objective(net, (torch.randn(8, 3), torch.randn(8, 1)), torch.nn.functional.mse_loss)
    >>> d = random_directions(obj, 2, seed=0)
    >>> inside = obj.theta0 + 0.5 * d.vectors[0] - 0.25 * d.vectors[1]
    >>> t = project_trajectory(obj, d, [obj.layout.unflatten(inside)])
    >>> [round(float(c), 5) for c in t.coords[0]], bool(t.off_plane[0] < 1e-5)
    ([0.5, -0.25], True)
    """
    from ._validation import check_objective

    check_objective("objective", objective)
    d = as_directions(objective, directions)
    thetas, cks = checkpoint_thetas(objective, checkpoints)
    theta0 = objective.theta0.double()
    R = thetas.double() - theta0[None, :]
    bad = [c.name for c, row in zip(cks, R, strict=True) if not bool(torch.isfinite(row).all())]
    if bad:
        raise NonFiniteError(
            f"checkpoints: the parameters of {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} contain NaN or inf; "
            "they have no place in the subspace. Leave those checkpoints out (a diverged run's last steps)."
        )
    D = d.vectors.double()
    coords, off = _least_squares(D, R)
    loss = np.array([_own_loss(objective, ck, th) for ck, th in zip(cks, thetas, strict=True)])
    proj = (theta0[None, :] + coords @ D).to(objective.dtype)
    projected = objective.loss_batch(proj).numpy()
    return Trajectory(
        coords=coords.cpu().numpy(),
        loss=loss,
        projected_loss=projected,
        off_plane=off.cpu().numpy(),
        distance=R.norm(dim=1).cpu().numpy(),
        names=tuple(c.name for c in cks),
        steps=np.array([np.nan if c.step is None else float(c.step) for c in cks]),
        directions=d.metadata(),
        center_value=objective.loss(),
    )


def _own_loss(objective: Objective, ck: Checkpoint, theta: torch.Tensor) -> float:
    """The objective's loss at ``theta`` with the checkpoint's buffers and frozen parameters in place of the
    objective's (those missing from the state dict, such as non-persistent buffers, stay the objective's)."""
    return float(objective.with_fixed_state(ck.state).loss_batch(theta[None])[0])


def _two(objective: Objective, a: Any, b: Any) -> tuple[torch.Tensor, torch.Tensor, list[Checkpoint]]:
    thetas, cks = checkpoint_thetas(objective, [a, b])
    return thetas[0], thetas[1], cks


def plane_directions(objective: Objective, a: Any, b: Any) -> Directions:
    """The plane through three points: checkpoints ``a`` and ``b`` and the objective's parameters ``theta0``.

    ``d_1 = (theta_a - theta0) / ||theta_a - theta0||`` and ``d_2`` is the unit part of ``theta_b - theta0``
    orthogonal to ``d_1`` (Gram-Schmidt), so the axes are distances in parameter space, ``a`` lies at
    ``(||theta_a - theta0||, 0)`` and ``b`` at ``(d_1 . (theta_b - theta0), d_2 . (theta_b - theta0))``.

    Parameters
    ----------
    objective : Objective
    a, b : nn.Module, state dict or path
        Two checkpoints of the objective's architecture.

    Returns
    -------
    Directions
        ``kind="plane"``, orthonormal; ``extra["coords"]`` holds the coordinates of ``a`` and ``b``
        (``{"a": [x, y], "b": [x, y]}``) and ``extra["checkpoints"]`` their names.

    Examples
    --------
    >>> import torch
    >>> from landform import Objective
    >>> net = torch.nn.Linear(2, 1, bias=False)
    >>> obj = Objective(net, (torch.randn(4, 2), torch.randn(4, 1)), torch.nn.functional.mse_loss)
    >>> w = net.weight.detach()
    >>> d = plane_directions(obj, {"weight": w + torch.tensor([[3.0, 0.0]])}, {"weight": w + torch.tensor([[1.0, 2.0]])})
    >>> {k: [round(x, 4) for x in v] for k, v in d.extra["coords"].items()}
    {'a': [3.0, 0.0], 'b': [1.0, 2.0]}
    """
    ta, tb, cks = _two(objective, a, b)
    theta0 = objective.theta0.double()
    ra, rb = ta.double() - theta0, tb.double() - theta0
    na = float(ra.norm())
    if na == 0.0:
        raise InputError(f"a: checkpoint {cks[0].name} equals the objective's parameters; the plane is undefined.")
    d1 = ra / na
    bx = float(rb @ d1)
    perp = rb - bx * d1
    by = float(perp.norm())
    if by <= 64 * torch.finfo(objective.dtype).eps * max(float(rb.norm()), na):  # collinear to rounding
        raise InputError(
            f"a, b: checkpoints {cks[0].name} and {cks[1].name} lie on one line with the objective's parameters; "
            "three points on a line span no plane (use linear_path for the line)."
        )
    d2 = perp / by
    vecs = torch.stack([d1, d2]).to(device=objective.device, dtype=objective.dtype).contiguous()
    extra = {"coords": {"a": [na, 0.0], "b": [bx, by]}, "checkpoints": [cks[0].name, cks[1].name]}
    return Directions(vecs, kind="plane", extra=extra)


def linear_path(
    objective: Objective,
    a: Any,
    b: Any,
    resolution: int = 21,
    *,
    span: tuple[float, float] = (0.0, 1.0),
) -> Landscape:
    """Loss along the straight line between two checkpoints, as a 1-D landscape.

    The point at coordinate ``t`` is ``theta_a + t * (theta_b - theta_a)``: ``t = 0`` is ``a``, ``t = 1`` is
    ``b``; the axis is the interpolation fraction (``span=(-0.5, 1.5)`` extrapolates). Losses use the objective's
    buffers and frozen parameters.

    Parameters
    ----------
    objective : Objective
    a, b : nn.Module, state dict or path
    resolution : int
        Points on the line (>= 2).
    span : (lo, hi)
        Range of ``t``.

    Returns
    -------
    Landscape
        1-D; ``axes[0]`` is ``t``, ``center_value`` the loss at ``a``; ``directions["kind"] == "path"`` with the
        length ``||theta_b - theta_a||`` in ``norms``.

    Examples
    --------
    >>> import torch
    >>> from landform import Objective
    >>> net = torch.nn.Linear(2, 1)
    >>> obj = Objective(net, (torch.randn(8, 2), torch.randn(8, 1)), torch.nn.functional.mse_loss)
    >>> ls = linear_path(obj, net, torch.nn.Linear(2, 1), resolution=5)
    >>> ls.axes[0].tolist(), bool(abs(ls.values[0] - obj.loss()) < 1e-6)
    ([0.0, 0.25, 0.5, 0.75, 1.0], True)
    """
    from ._provenance import versions
    from .evaluate import grid_axes

    ta, tb, cks = _two(objective, a, b)
    (t,) = grid_axes([tuple(span)] if isinstance(span, (tuple, list)) else span, resolution, 1)
    delta = tb - ta
    length = float(delta.double().norm())
    if length == 0.0:
        raise InputError(f"a, b: checkpoints {cks[0].name} and {cks[1].name} are equal; the path has no length.")
    t0 = time.perf_counter()
    T = torch.as_tensor(t, dtype=torch.float64, device=objective.device)
    thetas = (ta.double()[None, :] + T[:, None] * delta.double()[None, :]).to(objective.dtype)
    values = objective.loss_batch(thetas).numpy()
    center = float(objective.loss_batch(ta[None])[0])
    fp = hashlib.sha256(delta.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()
    meta = {
        "kind": "path",
        "n": 1,
        "normalization": None,
        "seed": None,
        "eigenvalues": None,
        "norms": [length],
        "fingerprint": fp,
        "checkpoints": [cks[0].name, cks[1].name],
        "axis": "interpolation fraction t: theta_a + t (theta_b - theta_a)",
    }
    prov = {
        "num_params": objective.num_params,
        "num_samples": objective.num_samples,
        "versions": versions(),
        "timings": {"total_s": time.perf_counter() - t0},
    }
    return Landscape(values, (t,), meta, center, prov)

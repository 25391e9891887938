"""Curvature of the dataset loss: Hessian eigenpairs, trace and spectral density, from HVPs only.

All functions take an :class:`~landform.objective.Objective` and use ``objective.hvp`` (the Hessian of the
mean loss over the WHOLE dataset); the Hessian is never formed. The Krylov bases live on the objective's
device in float64.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

from ._deprecate import renamed_arguments
from ._validation import check_choice, check_finite_scalar, check_finite_tensor, check_float, check_int, check_objective
from .curvature import CurvatureOperator, ParamBlock, param_block
from .directions import Directions, normalize_vector
from .errors import InputError
from .objective import Objective

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz

__all__ = [
    "Eigenpairs",
    "TraceEstimate",
    "SpectralDensity",
    "hessian_eigenpairs",
    "hessian_trace",
    "hessian_density",
    "hessian_directions",
    "lanczos",
]


@dataclass(frozen=True, eq=False)
class Eigenpairs:
    """Hessian eigenpairs.

    Attributes
    ----------
    values : numpy.ndarray, shape (k,)
        Eigenvalues, ordered as ``which`` asks (largest first for "LA" and "LM", smallest first for "SA").
    vectors : torch.Tensor, shape (k, P)
        Unit eigenvectors (flat, over the trainable parameters), in the objective's dtype and device.
    residuals : numpy.ndarray, shape (k,)
        Relative residuals ``||H v - lambda v|| / |lambda|``, measured with one extra HVP per pair.
    n_hvp : int
        HVPs spent by the Krylov solver (the residual measurements excluded; see ``n_hvp_check``).
    n_hvp_check : int
        HVPs spent measuring true residuals: k per check (one check normally; more when float32 rounding
        made the Lanczos estimate optimistic and the solver went on).
    converged : numpy.ndarray of bool, shape (k,)
    which : str
    """

    values: np.ndarray
    vectors: torch.Tensor
    residuals: np.ndarray
    n_hvp: int
    n_hvp_check: int
    converged: np.ndarray
    which: str


@dataclass(frozen=True)
class TraceEstimate:
    """A stochastic trace estimate: ``value`` +- ``stderr`` from ``n_hvp`` HVPs."""

    value: float
    stderr: float
    n_hvp: int
    method: str


@dataclass(frozen=True, eq=False)
class SpectralDensity:
    """Stochastic Lanczos quadrature of the Hessian spectrum.

    Attributes
    ----------
    nodes, weights : numpy.ndarray, shape (n_probes, n_steps)
        Ritz values and their quadrature weights (each probe's weights sum to 1/n_probes).
    grid, density : numpy.ndarray
        A Gaussian-smoothed density on ``grid``; it integrates to 1.
    sigma : float
        Smoothing width.
    n_hvp : int
    """

    nodes: np.ndarray
    weights: np.ndarray
    grid: np.ndarray
    density: np.ndarray
    sigma: float
    n_hvp: int

    def moment(self, p: int) -> float:
        """Quadrature estimate of the p-th spectral moment ``tr(H^p) / P``."""
        return float(np.sum(self.weights * self.nodes**p))


def _operator(
    objective: Objective, mode: str, counter: list[int], curvature: str, params: Any
) -> tuple[Callable[[torch.Tensor], torch.Tensor], ParamBlock]:
    """The curvature operator on a parameter block (:mod:`landform.curvature`), counting its products."""
    op = CurvatureOperator(objective, curvature, params, mode=mode)

    def matvec(v: torch.Tensor) -> torch.Tensor:
        counter[0] += 1
        return op(v)

    return matvec, op.block


def lanczos(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    v0: torch.Tensor,
    steps: int,
    *,
    k: int = 0,
    which: str = "LA",
    tol: float = 0.0,
    check_every: int = 1,
    verify: Callable[[np.ndarray, np.ndarray, torch.Tensor, int], bool] | None = None,
    basis_dtype: torch.dtype = torch.float64,
) -> tuple[np.ndarray, np.ndarray, torch.Tensor, int]:
    """Lanczos with full reorthogonalisation (twice per step).

    Runs until ``steps`` vectors, an invariant subspace, or (when ``k > 0`` and ``tol > 0``) until the k
    wanted Ritz pairs have estimated residuals ``|beta_j s_ji| <= tol * |theta_i|``. The estimate ignores the
    rounding of the operator (float32 HVPs), so when it passes, ``verify(alpha, beta, V, m)`` (if given) may
    measure the true residuals and return False to go on with a ten times stricter estimate.

    The basis is stored in ``basis_dtype`` (float32 halves its memory for models with millions of
    parameters; the iteration itself runs in float64) and its rows are allocated uninitialised, so memory
    grows with the steps actually taken.

    Returns ``(alpha, beta, V, m)``: the tridiagonal coefficients, the basis (m, P) and its size m.
    """
    P = v0.numel()
    steps = min(steps, P)
    V = torch.empty(steps, P, dtype=basis_dtype, device=v0.device)
    alpha = np.zeros(steps)
    beta = np.zeros(steps)
    q = v0.to(torch.float64)
    q = q / q.norm()
    m = 0
    for j in range(steps):
        V[j] = q
        w = matvec(q)
        a = float(torch.dot(w, q))
        alpha[j] = a
        m = j + 1
        for _ in range(2):
            if basis_dtype == torch.float64:
                w = w - V[:m].T @ (V[:m] @ w)
            else:
                w = w - (V[:m].T @ (V[:m] @ w.to(basis_dtype))).to(torch.float64)
        b = float(w.norm())
        beta[j] = b
        if b <= 1e-12 * max(1.0, abs(a)):
            break
        if k > 0 and tol > 0 and m >= k and (m % check_every == 0):
            theta, S = eigh_tridiagonal(alpha[:m], beta[: m - 1]) if m > 1 else (alpha[:1], np.ones((1, 1)))
            idx = _select(theta, k, which)
            est = np.abs(b * S[-1, idx])
            if np.all(est <= tol * np.maximum(np.abs(theta[idx]), 1e-30)):
                if verify is None or verify(alpha[:m], beta[:m], V[:m], m):
                    break
                tol = tol / 10
        q = w / b
    return alpha[:m], beta[:m], V[:m], m


def _select(theta: np.ndarray, k: int, which: str) -> np.ndarray:
    if which == "LA":
        return np.argsort(-theta, kind="stable")[:k]
    if which == "SA":
        return np.argsort(theta, kind="stable")[:k]
    return np.argsort(-np.abs(theta), kind="stable")[:k]


def hessian_eigenpairs(
    objective: Objective,
    k: int,
    *,
    which: str = "LA",
    tol: float = 1e-5,
    seed: int = 0,
    max_hvp: int | None = None,
    mode: str = "rev",
    curvature: str = "hessian",
    params: Any = None,
) -> Eigenpairs:
    """Top-k Hessian eigenpairs of the dataset loss by Lanczos with full reorthogonalisation.

    Parameters
    ----------
    objective : Objective
    k : int
        Number of pairs, 1 <= k < P.
    which : {"LA", "LM", "SA"}
        Largest algebraic, largest magnitude (shows negative curvature), or smallest algebraic.
    tol : float
        Stop when every wanted pair's estimated relative residual is below ``tol`` (the measured residuals
        are returned in ``.residuals``). In float32 models residuals bottom out near 1e-6.
    seed : int
        Seed of the start vector.
    max_hvp : int, optional
        HVP budget (default ``min(P, max(30 k, 60))``, lowered with a warning when its basis would not fit in
        memory); pairs not converged within it are warned about. The Lanczos basis is kept in float64 up to
        2 GiB and in float32 beyond (models with millions of parameters); a budget whose basis cannot fit in
        free memory is refused with the largest one that fits.
    mode : {"rev", "fwd"}
        HVP mode (see :meth:`Objective.hvp`).
    curvature : {"hessian", "ggn", "ef"}
        The operator: the Hessian, the generalised Gauss-Newton matrix or the empirical Fisher
        (:mod:`landform.curvature`). Each product costs about one HVP.
    params : optional
        Parameter names, glob patterns or modules (:func:`landform.curvature.param_block`): the eigenpairs of
        the operator's block on those parameters. ``k`` must be below the block's size; the vectors are
        returned over all P parameters, zero outside the block.

    Returns
    -------
    Eigenpairs

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> obj = Objective(torch.nn.Linear(3, 1), (torch.randn(32, 3), torch.randn(32, 1)), torch.nn.functional.mse_loss)
    >>> ep = hessian_eigenpairs(obj, 2)
    >>> H = torch.autograd.functional.hessian(lambda t: obj.batch_loss(t, obj.batches[0]), obj.theta0)
    >>> bool(torch.allclose(torch.tensor(ep.values, dtype=H.dtype), torch.linalg.eigvalsh(H).flip(0)[:2], rtol=1e-4))
    True
    """
    check_objective("objective", objective)
    counter = [0]
    matvec, block = _operator(objective, mode, counter, curvature, params)
    P = block.size
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 or k >= P:
        where = "the number of trainable parameters" if block.is_full else "parameters in the params block"
        raise InputError(f"k: expected an integer with 1 <= k < P={P} ({where}), got {k!r}.")
    check_choice("which", which, ("LA", "LM", "SA"))
    tol = check_float("tol", tol, minimum=0.0, strict_minimum=True)
    check_int("seed", seed, minimum=0)
    check_choice("mode", mode, ("rev", "fwd"))
    if max_hvp is not None:
        max_hvp = check_int("max_hvp", max_hvp, minimum=1)
    budget = min(P, max(30 * k, 60)) if max_hvp is None else int(max_hvp)
    if budget < k:
        raise InputError(f"max_hvp: expected at least k={k}, got {max_hvp}.")
    if max_hvp is None:
        budget = _fit_budget(P, budget, objective.device)
    basis_dtype = _basis_dtype(P, budget, objective.device)
    gen = torch.Generator().manual_seed(int(seed))
    v0 = torch.randn(P, generator=gen, dtype=torch.float64).to(objective.device)
    checks = [0]
    last: dict[str, object] = {}

    def ritz(alpha: np.ndarray, beta: np.ndarray, V: torch.Tensor, m: int):
        theta, S = eigh_tridiagonal(alpha, beta[: m - 1]) if m > 1 else (alpha, np.ones((1, 1)))
        idx = _select(theta, min(k, m), which)
        vecs = (torch.as_tensor(S[:, idx].T.copy(), device=V.device, dtype=V.dtype) @ V).to(torch.float64)
        vecs = vecs / vecs.norm(dim=1, keepdim=True)
        pivot = vecs.abs().argmax(dim=1)  # deterministic signs: largest-magnitude entry positive
        vecs = vecs * torch.sign(vecs[torch.arange(vecs.shape[0]), pivot])[:, None]
        return theta[idx], vecs

    def measure(alpha: np.ndarray, beta: np.ndarray, V: torch.Tensor, m: int) -> bool:
        vals, vecs = ritz(alpha, beta, V, m)
        before = counter[0]
        res = np.asarray(
            [float((matvec(vecs[i]) - vals[i] * vecs[i]).norm()) / max(abs(vals[i]), 1e-30) for i in range(len(vals))]
        )
        checks[0] += counter[0] - before
        last.update(m=m, vals=vals, vecs=vecs, res=res)
        return bool(len(vals) == k and np.all(res <= tol))

    alpha, beta, V, m = lanczos(
        matvec, v0, budget, k=k, which=which, tol=tol * 0.5, verify=measure, basis_dtype=basis_dtype
    )
    if last.get("m") != m:
        measure(alpha, beta, V, m)
    vals, vecs, res = last["vals"], last["vecs"], last["res"]
    check_finite_tensor("hessian_eigenpairs: the eigenvalues", vals, _NONFINITE_HINT)
    idx = np.arange(len(vals))
    n_check = checks[0]
    n_hvp = counter[0] - n_check
    converged = res <= max(tol, 10 * _dtype_floor(objective.dtype))
    if len(idx) < k or not converged.all():
        warnings.warn(
            f"hessian_eigenpairs: {int((~converged).sum()) + k - len(idx)} of {k} pairs did not reach tol={tol} "
            f"within {n_hvp} HVPs (residuals {np.array2string(res, precision=2)}); raise max_hvp or tol.",
            stacklevel=2,
        )
    return Eigenpairs(
        values=vals.copy(),
        vectors=block.embed(vecs.to(objective.dtype)),
        residuals=res,
        n_hvp=n_hvp,
        n_hvp_check=n_check,
        converged=converged,
        which=which,
    )


_FLOAT64_BASIS_LIMIT = 2 * 2**30  # bytes: above this a full float64 Lanczos basis is stored in float32


def _available_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` (CUDA: mem_get_info; CPU: MemAvailable of /proc/meminfo), or None if unknown."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[0])
        if device.type == "cpu":
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
    except (OSError, RuntimeError, ValueError):
        return None
    return None


def _basis_dtype(P: int, steps: int, device: torch.device) -> torch.dtype:
    """float64 unless the basis would pass 2 GiB; refuses a basis that cannot fit in free memory."""
    steps = min(steps, P)
    dtype = torch.float64 if steps * P * 8 <= _FLOAT64_BASIS_LIMIT else torch.float32
    need = steps * P * (8 if dtype == torch.float64 else 4)
    free = _available_memory(device)
    if free is not None and need > 0.8 * free:
        fit = max(1, int(0.8 * free / (P * 4)))
        raise InputError(
            f"hessian_eigenpairs: a Lanczos basis of {steps} vectors of {P:,} parameters needs "
            f"{need / 2**30:.1f} GiB but {free / 2**30:.1f} GiB is free on {device}; pass max_hvp={fit} or fewer "
            "(or a looser tol), or free memory."
        )
    return dtype


def _fit_budget(P: int, steps: int, device: torch.device) -> int:
    """The default HVP budget, lowered (with a warning) until its float32 basis fits in 80 % of free memory."""
    free = _available_memory(device)
    if free is None or min(steps, P) * P * 4 <= 0.8 * free:
        return steps
    fit = max(2, int(0.8 * free / (P * 4)))
    warnings.warn(
        f"hessian_eigenpairs: the default budget of {steps} HVPs would need a {steps * P * 4 / 2**30:.1f} GiB "
        f"Lanczos basis; {free / 2**30:.1f} GiB is free, so the budget is {fit}.",
        stacklevel=3,
    )
    return fit


def _dtype_floor(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps) * 10


def _check_budget(name: str, value: int, minimum: int = 1) -> int:
    return check_int(name, value, minimum=minimum)


_NONFINITE_HINT = (
    "the Hessian is not finite at the model's parameters; check the weights, buffers and data for NaN/inf "
    "(objective.loss() and objective.gradient() say which)."
)


def _rademacher(gen: torch.Generator, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    return (torch.randint(0, 2, shape, generator=gen, dtype=torch.int64) * 2 - 1).to(torch.float64).to(device)


def hessian_trace(
    objective: Objective,
    *,
    method: str = "hutch++",
    n_hvp: int = 99,
    seed: int = 0,
    mode: str = "rev",
    curvature: str = "hessian",
    params: Any = None,
) -> TraceEstimate:
    """Stochastic estimate of ``tr(H)`` with a standard error.

    ``"hutchinson"``: the mean of ``z^T H z`` over ``n_hvp`` Rademacher probes; stderr = sample std /
    sqrt(n). ``"hutch++"`` (Meyer et al. 2021): a third of the budget sketches ``H S``, a third takes the
    exact trace on its range ``Q``, a third runs Hutchinson on the deflated ``(I - QQ^T) H (I - QQ^T)``;
    the standard error is that last part's. Hutch++ wins when the spectrum has a few large eigenvalues
    (the usual case for trained networks); see ``benchmarks/hessian.py``. ``curvature`` and ``params`` pick
    the operator and its parameter block as in :func:`hessian_eigenpairs` (the trace of that block).

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> obj = Objective(torch.nn.Linear(3, 1), (torch.randn(32, 3), torch.randn(32, 1)), torch.nn.functional.mse_loss)
    >>> est = hessian_trace(obj, method="hutch++", n_hvp=12)   # P = 4: exact once Q spans everything
    >>> H = torch.autograd.functional.hessian(lambda t: obj.batch_loss(t, obj.batches[0]), obj.theta0)
    >>> abs(est.value - float(H.trace())) < 1e-4
    True
    """
    check_objective("objective", objective)
    check_choice("method", method, ("hutchinson", "hutch++"))
    check_int("seed", seed, minimum=0)
    check_choice("mode", mode, ("rev", "fwd"))
    n_hvp = _check_budget("n_hvp", n_hvp, 2 if method == "hutchinson" else 3)
    counter = [0]
    matvec, block = _operator(objective, mode, counter, curvature, params)
    gen = torch.Generator().manual_seed(int(seed))
    P = block.size
    dev = objective.device
    if method == "hutchinson":
        samples = []
        for _ in range(n_hvp):
            z = _rademacher(gen, (P,), dev)
            samples.append(float(torch.dot(z, matvec(z))))
        s = np.asarray(samples)
        value = check_finite_scalar("hessian_trace: the trace estimate", float(s.mean()), _NONFINITE_HINT)
        return TraceEstimate(value, float(s.std(ddof=1) / math.sqrt(s.size)), counter[0], method)
    r = n_hvp // 3
    g = n_hvp - 2 * r
    S = _rademacher(gen, (r, P), dev)
    HS = torch.stack([matvec(s) for s in S])
    Q, _ = torch.linalg.qr(HS.T)  # (P, r)
    Q = Q.T.contiguous()
    exact = sum(float(torch.dot(q, matvec(q))) for q in Q)
    samples = []
    for _ in range(g):
        z = _rademacher(gen, (P,), dev)
        z = z - Q.T @ (Q @ z)
        samples.append(float(torch.dot(z, matvec(z))))
    s = np.asarray(samples)
    stderr = float(s.std(ddof=1) / math.sqrt(s.size)) if s.size > 1 else float("inf")
    value = check_finite_scalar("hessian_trace: the trace estimate", exact + float(s.mean()), _NONFINITE_HINT)
    return TraceEstimate(value, stderr, counter[0], method)


def hessian_density(
    objective: Objective,
    *,
    n_probes: int = 4,
    n_steps: int = 60,
    seed: int = 0,
    sigma: float | None = None,
    n_grid: int = 1000,
    mode: str = "rev",
    curvature: str = "hessian",
    params: Any = None,
) -> SpectralDensity:
    """Spectral density of the Hessian by stochastic Lanczos quadrature.

    Each of ``n_probes`` Rademacher probes (normalised) runs ``n_steps`` Lanczos steps; the Ritz values are
    quadrature nodes and the squared first components of the Ritz vectors their weights. The smoothed
    density uses a Gaussian of width ``sigma`` (default 1% of the node range) and integrates to 1.
    ``curvature`` and ``params`` pick the operator and its block as in :func:`hessian_eigenpairs`.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> obj = Objective(torch.nn.Linear(3, 1), (torch.randn(32, 3), torch.randn(32, 1)), torch.nn.functional.mse_loss)
    >>> dens = hessian_density(obj, n_probes=2, n_steps=4)
    >>> round(float(_trapezoid(dens.density, dens.grid)), 6)
    1.0
    """
    check_objective("objective", objective)
    n_probes = _check_budget("n_probes", n_probes)
    n_steps = _check_budget("n_steps", n_steps)
    n_grid = check_int("n_grid", n_grid, minimum=2)
    check_int("seed", seed, minimum=0)
    check_choice("mode", mode, ("rev", "fwd"))
    if sigma is not None:
        sigma = check_float("sigma", sigma, minimum=0.0, strict_minimum=True)
    counter = [0]
    matvec, block = _operator(objective, mode, counter, curvature, params)
    gen = torch.Generator().manual_seed(int(seed))
    P = block.size
    steps = min(n_steps, P)
    nodes = np.zeros((n_probes, steps))
    weights = np.zeros((n_probes, steps))
    basis_dtype = _basis_dtype(P, steps, objective.device)
    for i in range(n_probes):
        z = _rademacher(gen, (P,), objective.device)
        alpha, beta, _, m = lanczos(matvec, z, steps, basis_dtype=basis_dtype)
        theta, S = eigh_tridiagonal(alpha, beta[: m - 1]) if m > 1 else (alpha, np.ones((1, 1)))
        nodes[i, :m] = theta
        weights[i, :m] = S[0, :] ** 2 / n_probes
    check_finite_tensor("hessian_density: the quadrature nodes", nodes, _NONFINITE_HINT)
    lo, hi = float(nodes[weights > 0].min()), float(nodes[weights > 0].max())
    if sigma is None:
        sigma = max(0.01 * (hi - lo), 1e-12 * max(1.0, abs(hi)))
    if not (sigma > 0):
        raise InputError(f"sigma: expected a positive number, got {sigma}.")
    grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, int(n_grid))
    dens = np.zeros_like(grid)
    for t, w in zip(nodes.ravel(), weights.ravel(), strict=True):
        if w > 0:
            dens += w * np.exp(-0.5 * ((grid - t) / sigma) ** 2)
    dens /= sigma * math.sqrt(2 * math.pi)
    dens /= _trapezoid(dens, grid)
    check_finite_tensor("hessian_density: the smoothed density", dens, "pass a larger sigma.")
    return SpectralDensity(nodes, weights, grid, dens, float(sigma), counter[0])


@renamed_arguments(n="dims")
def hessian_directions(
    objective: Objective,
    dims: int,
    *,
    which: str = "LA",
    tol: float = 1e-5,
    seed: int = 0,
    normalization: str | None = None,
    max_hvp: int | None = None,
    mode: str = "rev",
    curvature: str = "hessian",
    params: Any = None,
) -> Directions:
    """Directions along the top ``dims`` Hessian eigenvectors (old keyword: ``n``), for :func:`landform.grid_landscape`.

    The directions are the unit, orthogonal eigenvectors, so an axis coordinate is a distance in parameter
    space; their eigenvalues, residuals and HVP count are in the metadata. ``normalization="layer"`` or
    ``"numel"`` reproduces the reference package's per-tensor rescaling (current source / 1.3.1 release; it
    tilts the subspace) for comparisons with it (see :mod:`landform.geometry`). ``curvature`` and ``params``
    pick the operator and its block as in :func:`hessian_eigenpairs`; the directions are zero outside the
    block, and both are recorded in the metadata.
    """
    from .directions import NORMALIZATIONS

    check_choice("normalization", normalization, NORMALIZATIONS)
    ep = hessian_eigenpairs(
        objective, dims, which=which, tol=tol, seed=seed, max_hvp=max_hvp, mode=mode, curvature=curvature, params=params
    )
    vecs = ep.vectors
    if normalization is not None:
        vecs = torch.stack([normalize_vector(objective, v.double(), normalization) for v in vecs]).to(objective.dtype)
    return Directions(
        vecs,
        kind="hessian",
        normalization=normalization,
        seed=int(seed),
        eigenvalues=ep.values,
        extra={
            "which": which,
            "residuals": [float(r) for r in ep.residuals],
            "n_hvp": ep.n_hvp,
            **({} if curvature == "hessian" else {"curvature": curvature}),
            **({} if params is None else {"params": list(param_block(objective, params).names)}),
        },
    )

"""Average- and worst-case sharpness (after Andriushchenko et al. 2023)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._deprecate import renamed_arguments
from .._validation import check_bool, check_choice, check_finite_scalar, check_float, check_int, check_objective
from ..objective import Objective

__all__ = ["Sharpness", "sharpness"]


@dataclass(frozen=True)
class Sharpness:
    """``value = L(theta + delta) - L(theta)``: the mean over random delta (average) or the largest found
    (worst), with the base loss, the radius and how it was measured."""

    value: float
    kind: str
    rho: float
    norm: str
    adaptive: bool
    base_loss: float
    stderr: float
    n_evals: int


@renamed_arguments(steps="n_steps")
def sharpness(
    objective: Objective,
    *,
    rho: float,
    kind: str = "average",
    norm: str = "l2",
    adaptive: bool = False,
    n_samples: int = 16,
    n_steps: int = 20,
    seed: int = 0,
) -> Sharpness:
    """Sharpness of the dataset loss at the model's parameters.

    The perturbation lives in a ball of radius ``rho``: ``||delta||_2 <= rho`` (``norm="l2"``) or
    ``|delta_i| <= rho`` (``"linf"``). With ``adaptive=True`` the ball is scaled element-wise by the weights,
    ``delta = |theta| * u`` with u in the ball (Kwon et al. 2021's adaptive sharpness).

    - ``kind="average"``: the mean increase over ``n_samples`` random perturbations on the ball's boundary:
      a Gaussian direction scaled to norm rho for L2, random signs times rho for L-infinity. (For large P a
      Gaussian N(0, rho^2/P) concentrates on that sphere.) ``stderr`` is the standard error of that mean.
    - ``kind="worst"``: projected gradient ascent (``n_steps`` steps of size 2 rho / n_steps (old keyword: ``steps``), normalised gradient
      for L2, its sign for L-infinity) started from the worst of the same random perturbations; the largest
      increase seen. So at equal rho, seed and samples, worst >= average by construction.

    Both are exactly 0 for rho = 0.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> obj = Objective(torch.nn.Linear(3, 1), (torch.randn(32, 3), torch.randn(32, 1)), torch.nn.functional.mse_loss)
    >>> s = [sharpness(obj, rho=r, kind="worst").value for r in (0.0, 0.1, 0.2)]
    >>> s[0] == 0.0 and s[0] < s[1] < s[2]
    True
    """
    check_objective("objective", objective)
    rho = check_float("rho", rho, minimum=0.0)
    kind = check_choice("kind", kind, ("average", "worst"))
    norm = check_choice("norm", norm, ("l2", "linf"))
    adaptive = check_bool("adaptive", adaptive)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    n_steps = check_int("n_steps", n_steps, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    theta0 = objective.theta0
    base = objective.loss()  # raises NonFiniteError at a non-finite centre
    if rho == 0:
        return Sharpness(0.0, kind, rho, norm, adaptive, base, 0.0, 1)
    scale = theta0.abs() if adaptive else torch.ones_like(theta0)
    gen = torch.Generator().manual_seed(int(seed))
    P = objective.num_params

    def project(u: torch.Tensor) -> torch.Tensor:
        if norm == "l2":
            n = u.norm()
            return u * (rho / n) if n > rho else u
        return u.clamp(-rho, rho)

    us = []
    for _ in range(n_samples):
        if norm == "l2":
            z = torch.randn(P, generator=gen, dtype=torch.float64)
            us.append((z * (rho / z.norm())).to(theta0))
        else:
            us.append((torch.randint(0, 2, (P,), generator=gen) * 2 - 1).to(theta0) * rho)
    thetas = torch.stack([theta0 + scale * u for u in us])
    losses = objective.loss_batch(thetas).numpy() - base
    bad = ~np.isfinite(losses)
    if bad.any():
        from ..errors import NonFiniteError

        raise NonFiniteError(
            f"sharpness: the loss is NaN/inf at {int(bad.sum())} of {losses.size} perturbations of radius rho={rho}; "
            "pass a smaller rho (or check the model for values that overflow)."
        )
    if kind == "average":
        se = float(losses.std(ddof=1) / np.sqrt(losses.size)) if losses.size > 1 else 0.0
        return Sharpness(float(losses.mean()), kind, rho, norm, adaptive, base, se, losses.size)
    best = float(losses.max())
    u = us[int(np.argmax(losses))].clone()
    eta = 2.0 * rho / max(n_steps, 1)
    evals = losses.size
    for _ in range(n_steps):
        g = objective.gradient(theta0 + scale * u) * scale  # d L / d u
        if norm == "l2":
            gn = g.norm()
            if gn == 0:
                break
            u = project(u + eta * g / gn)
        else:
            u = project(u + eta * torch.sign(g))
        val = objective.loss(theta0 + scale * u) - base  # NonFiniteError on a NaN/inf loss
        evals += 1
        best = max(best, val)
    best = check_finite_scalar("sharpness: the worst-case increase", best, "pass a smaller rho.")
    return Sharpness(best, kind, rho, norm, adaptive, base, 0.0, evals)

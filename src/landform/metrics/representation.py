"""Centered kernel alignment (Kornblith et al. 2019) of representations, and a layer-by-layer helper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError, NonFiniteError, NonFiniteInputError

__all__ = ["cka", "hsic", "layer_cka"]


def _as_matrix(X: Any, name: str) -> np.ndarray:
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        X = X.reshape(X.shape[0], -1)
    if X.shape[0] == 0:
        raise InputError(f"{name}: it has no samples (rows); CKA needs at least 2.")
    if not np.isfinite(X).all():
        raise NonFiniteInputError(
            f"{name}: {int((~np.isfinite(X)).sum())} entries are NaN or inf; check the model that produced the "
            "representation (NaN weights?) and its inputs."
        )
    return X


def _gram(X: np.ndarray, kernel: str, sigma: float | None) -> np.ndarray:
    if kernel == "linear":
        return X @ X.T
    sq = np.sum(X**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0.0)
    if sigma is None:
        off = d2[~np.eye(len(X), dtype=bool)]
        med = np.median(off) if off.size else 0.0
        sigma = float(np.sqrt(med / 2.0)) if med > 0 else 1.0
    return np.exp(-d2 / (2.0 * sigma**2))


def hsic(K: np.ndarray, L: np.ndarray, *, unbiased: bool = False) -> float:
    """HSIC of two Gram matrices (n, n): the biased ``tr(KHLH)/(n-1)^2`` or the unbiased estimator of
    Song et al. 2012 (needs n >= 4)."""
    n = K.shape[0]
    if unbiased:
        if n < 4:
            raise InputError(f"unbiased HSIC needs at least 4 samples, got {n}.")
        K = K.copy()
        L = L.copy()
        np.fill_diagonal(K, 0.0)
        np.fill_diagonal(L, 0.0)
        one_k = K.sum(axis=0)
        one_l = L.sum(axis=0)
        term = np.sum(K * L) + one_k.sum() * one_l.sum() / ((n - 1) * (n - 2)) - 2.0 * (one_k @ one_l) / (n - 2)
        return float(term / (n * (n - 3)))
    H = np.eye(n) - 1.0 / n
    return float(np.sum((H @ K @ H) * L) / (n - 1) ** 2)


def cka(X: Any, Y: Any, *, kernel: str = "linear", unbiased: bool = False, sigma: float | None = None) -> float:
    """Centered kernel alignment of two representations of the same n samples.

    Parameters
    ----------
    X, Y : array_like or torch.Tensor, shapes (n, p) and (n, q)
        Rows are samples (extra dimensions are flattened per sample).
    kernel : {"linear", "rbf"}
        ``"rbf"`` uses ``exp(-|x - x'|^2 / (2 sigma^2))`` with sigma from the median pairwise distance unless
        given.
    unbiased : bool
        Use the unbiased HSIC estimator (for minibatches; needs n >= 4).

    Returns
    -------
    float in [0, 1] (the unbiased estimator can stray slightly outside).

    Raises
    ------
    InputError
        For fewer than 2 samples, different sample counts, non-finite entries, or a representation with no
        variance across samples (CKA is 0/0 there; other libraries return NaN).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 8))
    >>> round(cka(X, X), 12)
    1.0
    >>> Q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    >>> round(cka(X, 3.0 * X @ Q), 12)  # invariant to orthogonal maps and isotropic scaling
    1.0
    """
    if kernel not in ("linear", "rbf"):
        raise InputError(f"kernel: expected 'linear' or 'rbf', got {kernel!r}.")
    if not isinstance(unbiased, (bool, np.bool_)):
        raise InputError(f"unbiased: expected True or False, got {unbiased!r}.")
    if sigma is not None and (
        isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.number)) or not np.isfinite(sigma) or sigma <= 0
    ):
        raise InputError(f"sigma: expected None or a finite number > 0 (the RBF width), got {sigma!r}.")
    X = _as_matrix(X, "X")
    Y = _as_matrix(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise InputError(f"X and Y: expected the same number of samples (rows), got {X.shape[0]} and {Y.shape[0]}.")
    n = X.shape[0]
    if n < 2:
        raise InputError(f"X: CKA needs at least 2 samples, got {n}.")
    for name, A in (("X", X), ("Y", Y)):
        if np.allclose(A, A[0:1], rtol=0, atol=0):
            raise InputError(
                f"{name}: the representation is the same for every sample (zero variance), so CKA is 0/0; "
                "check the layer (a dead ReLU layer?) or use more varied inputs."
            )
    if kernel == "linear":
        # Linear CKA does not change when a representation is scaled: bring each to max |entry| = 1 so that no
        # product of entries overflows or underflows float64 (1e-170 or 1e160 gave 0/0 or inf/inf before).
        X = X / np.abs(X).max()
        Y = Y / np.abs(Y).max()
    if kernel == "linear" and not unbiased:
        Xc = X - X.mean(axis=0)
        Yc = Y - Y.mean(axis=0)
        num = np.linalg.norm(Yc.T @ Xc) ** 2
        den = np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc)
        return _finite_cka(num / den)
    K = _gram(X, kernel, sigma)
    L = _gram(Y, kernel, sigma)
    kl = hsic(K, L, unbiased=unbiased)
    kk = hsic(K, K, unbiased=unbiased)
    ll = hsic(L, L, unbiased=unbiased)
    if kk <= 0 or ll <= 0:
        raise InputError("CKA: a self-similarity HSIC is not positive (too few samples for the unbiased estimator?).")
    return _finite_cka(kl / np.sqrt(kk * ll))


def _finite_cka(value: float) -> float:
    value = float(value)
    if not np.isfinite(value):
        raise NonFiniteError(
            f"cka: the result is {value} (the representations' products overflow or underflow float64); rescale "
            "them (e.g. divide by their largest absolute value) first."
        )
    return value


def layer_cka(
    model_a: Any,
    model_b: Any,
    data: Any,
    layers_a: Sequence[str],
    layers_b: Sequence[str] | None = None,
    *,
    max_batches: int | None = None,
) -> np.ndarray:
    """CKA between named layers' outputs of two models on the same data, in minibatches.

    Forward hooks collect each named module's output; for every minibatch the unbiased linear HSIC is
    computed and averaged over minibatches (Nguyen et al. 2021), so memory stays at one batch.

    Parameters
    ----------
    model_a, model_b : torch.nn.Module
    data : iterable of (inputs, targets) batches or an (inputs, targets) pair
        Batches need at least 4 samples each.
    layers_a, layers_b : names from ``model.named_modules()`` (``layers_b`` defaults to ``layers_a``).

    Returns
    -------
    numpy.ndarray, shape (len(layers_a), len(layers_b))
    """
    import torch

    from .._validation import check_int, check_module

    check_module("model_a", model_a)
    check_module("model_b", model_b)
    if max_batches is not None:
        max_batches = check_int("max_batches", max_batches, minimum=1)
    for which, names in (("layers_a", layers_a), ("layers_b", layers_b)):
        if names is None and which == "layers_b":
            continue
        if isinstance(names, str) or not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
            raise InputError(
                f"{which}: expected a list of module names (strings from model.named_modules()), got {names!r}."
            )
        if len(names) == 0:
            raise InputError(f"{which}: the list of layer names is empty; name at least one module.")
    layers_b = list(layers_a if layers_b is None else layers_b)
    layers_a = list(layers_a)
    mods_a = dict(model_a.named_modules())
    mods_b = dict(model_b.named_modules())
    for name, mods, which in ((layers_a, mods_a, "layers_a"), (layers_b, mods_b, "layers_b")):
        missing = [n for n in name if n not in mods]
        if missing:
            raise InputError(f"{which}: no module named {missing[:3]}; names come from model.named_modules().")
    store: dict[tuple[str, str], Any] = {}

    def hook(tag: str, name: str):
        def fn(_m, _inp, out):
            store[(tag, name)] = (out[0] if isinstance(out, (tuple, list)) else out).detach().flatten(1).double()

        return fn

    handles = [mods_a[n].register_forward_hook(hook("a", n)) for n in layers_a]
    handles += [mods_b[n].register_forward_hook(hook("b", n)) for n in layers_b]
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        data = [data]
    kl = np.zeros((len(layers_a), len(layers_b)))
    kk = np.zeros(len(layers_a))
    ll = np.zeros(len(layers_b))
    n_batches = 0
    flags = [(m, m.training) for m in (*model_a.modules(), *model_b.modules())]
    model_a.eval()
    model_b.eval()
    try:
        with torch.no_grad():
            for i, (x, _y) in enumerate(data):
                if max_batches is not None and i >= max_batches:
                    break
                n_rows = int(x.shape[0]) if isinstance(x, torch.Tensor) and x.dim() > 0 else None
                if n_rows is not None and n_rows < 4:
                    raise InputError(
                        f"data: batch {i} has {n_rows} samples; layer_cka's unbiased HSIC needs at least 4 per "
                        "batch (use a larger batch size or drop the last batch)."
                    )
                store.clear()
                model_a(x)
                model_b(x)
                for key, rep in store.items():
                    if not torch.isfinite(rep).all():
                        raise NonFiniteInputError(
                            f"layer_cka: the output of layer {key[1]!r} of model_{key[0]} has NaN/inf entries on "
                            f"batch {i}; check that model's weights and the inputs."
                        )
                grams_a = [(store[("a", n)] @ store[("a", n)].T).cpu().numpy() for n in layers_a]
                grams_b = [(store[("b", n)] @ store[("b", n)].T).cpu().numpy() for n in layers_b]
                for i_a, K in enumerate(grams_a):
                    kk[i_a] += hsic(K, K, unbiased=True)
                    for i_b, L in enumerate(grams_b):
                        kl[i_a, i_b] += hsic(K, L, unbiased=True)
                for i_b, L in enumerate(grams_b):
                    ll[i_b] += hsic(L, L, unbiased=True)
                n_batches += 1
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags:
            m.training = flag
    if n_batches == 0:
        raise InputError("data: no batches.")
    if np.any(kk <= 0) or np.any(ll <= 0):
        bad = [layers_a[i] for i in np.flatnonzero(kk <= 0)] + [layers_b[i] for i in np.flatnonzero(ll <= 0)]
        raise InputError(f"layer_cka: layers {bad} have no variance across samples; CKA is undefined there.")
    out = kl / np.sqrt(kk[:, None] * ll[None, :])
    if not np.isfinite(out).all():
        raise NonFiniteError("layer_cka: the CKA matrix has NaN/inf entries (overflow); rescale the inputs.")
    return out

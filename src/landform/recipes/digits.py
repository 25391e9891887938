"""The built-in example: a small CNN trained on scikit-learn's bundled 8x8 digit images.

The data ship inside scikit-learn (1,797 real handwritten digits), so nothing is downloaded. Training is
seeded and runs on one thread with deterministic algorithms (:func:`landform.determinism.single_threaded`), so
the trained weights, and every landscape of them, are bitwise the same whatever ``OMP_NUM_THREADS`` is and on
every torchrun rank; it takes a few seconds.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from ..determinism import single_threaded
from . import Recipe

__all__ = ["DigitsCNN", "load_digits_tensors", "fit_classifier", "train_digits_cnn", "recipe"]


class DigitsCNN(nn.Module):
    """conv(1->8) - BN - ReLU - conv(8->16) - ReLU - maxpool - linear(256->10): 3,850 parameters."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(2 * width * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def load_digits_tensors(test_fraction: float = 0.2, seed: int = 0):
    """Digits as float32 images (N, 1, 8, 8) scaled to [0, 1] and int64 labels, split train/test."""
    from sklearn.datasets import load_digits

    ds = load_digits()
    x = torch.tensor(ds.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(ds.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    return (x[train], y[train]), (x[test], y[test])


def fit_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> nn.Module:
    """Adam on cross-entropy, shuffled by a generator seeded with ``seed``; returns the model in eval mode
    (:func:`landform.recipes.training.fit`)."""
    from .training import fit

    return fit(model, x, y, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed)


def train_digits_cnn(
    epochs: int = 15, seed: int = 0, width: int = 8, lr: float = 3e-3, batch_size: int = 64
) -> tuple[DigitsCNN, dict]:
    """Train :class:`DigitsCNN` with Adam; returns the model (in eval mode) and a dict of accuracies.

    Training runs inside :func:`~landform.determinism.single_threaded`: the weights are bitwise the same on any
    thread count.
    """
    (xtr, ytr), (xte, yte) = load_digits_tensors(seed=seed)
    t0 = time.perf_counter()
    with single_threaded():
        with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's global random state
            torch.manual_seed(seed)
            model = DigitsCNN(width)
        fit_classifier(model, xtr, ytr, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    model.eval()
    with torch.no_grad():
        acc_tr = float((model(xtr).argmax(1) == ytr).float().mean())
        acc_te = float((model(xte).argmax(1) == yte).float().mean())
    info = {
        "train_accuracy": acc_tr,
        "test_accuracy": acc_te,
        "train_seconds": time.perf_counter() - t0,
        "epochs": epochs,
        "seed": seed,
        "n_train": int(len(ytr)),
        "n_test": int(len(yte)),
    }
    return model, info


def recipe(seed: int = 0, epochs: int = 15) -> Recipe:
    """The default recipe of ``landform analyze``: the trained CNN, its training set and cross-entropy."""
    model, info = train_digits_cnn(epochs=epochs, seed=seed)
    (xtr, ytr), _ = load_digits_tensors(seed=seed)
    info["dataset"] = "scikit-learn load_digits (8x8), train split"
    return Recipe(model, (xtr, ytr), nn.functional.cross_entropy, name="digits-cnn", info=info)

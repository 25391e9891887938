"""A run's saved topology: the merge tree (``merge_tree.npz``) and the persistence pairs (``persistence.npy``).
numpy only."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._npz import read_npz, write_npz
from ..errors import StoreError

if TYPE_CHECKING:
    from ..topology import MergeTree

__all__ = ["save_merge_tree", "load_merge_tree", "load_pairs", "TREE_FORMAT", "TREE_SCHEMA_VERSION"]

TREE_FORMAT, TREE_SCHEMA_VERSION = "landform.merge_tree", 1


def _values_digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()


_TREE_ARRAYS = ("minima", "saddles", "nodes", "parent", "death", "arc_label", "basin_label")


def save_merge_tree(path: str | os.PathLike, tree: MergeTree) -> None:
    """Write a merge tree's arrays to ``path`` (``.npz``); its values are not stored, only their digest."""
    meta = {
        "format": TREE_FORMAT,
        "schema_version": TREE_SCHEMA_VERSION,
        "root": int(tree.root),
        "graph": tree.graph,
        "shape": list(tree.values.shape),
        "values_sha256": _values_digest(tree.values),
    }
    write_npz(path, meta, **{k: getattr(tree, k) for k in _TREE_ARRAYS})


def load_merge_tree(path: str | os.PathLike, values: np.ndarray) -> MergeTree:
    """Read a merge tree written by :func:`save_merge_tree` for the landscape ``values`` it was built from.

    Raises :class:`StoreError` when ``values`` are not the ones the tree was built from.
    """
    from ..topology import MergeTree

    meta, z = read_npz(path, TREE_FORMAT, TREE_SCHEMA_VERSION, _TREE_ARRAYS)
    values = np.asarray(values, dtype=np.float64)
    if list(values.shape) != meta.get("shape") or _values_digest(values) != meta.get("values_sha256"):
        raise StoreError(f"{path}: built from other landscape values; delete it (`landform report` rebuilds it).")
    return MergeTree(values, **{k: z[k] for k in _TREE_ARRAYS}, root=int(meta["root"]), graph=str(meta["graph"]))


def load_pairs(path: str | os.PathLike) -> np.ndarray:
    """Persistence pairs saved as an (n, 2) float array (``persistence.npy``)."""
    path = Path(path)
    try:
        pairs = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable ({exc}); delete it to recompute.") from exc
    if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.issubdtype(pairs.dtype, np.floating):
        raise StoreError(f"{path}: expected an (n, 2) float array of persistence pairs, got {pairs.shape}.")
    return pairs

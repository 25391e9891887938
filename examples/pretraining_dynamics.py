"""Pre-training dynamics: a small BERT-style encoder trained from scratch by masked-language modelling on
Python standard-library docstrings, followed over its checkpoints with ``landform track`` (the paper's claim:
"SMAD falls while the trace rises" over pre-training).

Text: the docstrings of the public functions and classes of a fixed list of standard-library modules,
character-level (every character seen becomes a token), cut into windows of --seq characters. A fixed
evaluation set of windows is masked once (15 % of positions; of those 80 % [MASK], 10 % a random character,
10 % unchanged, seeded), and the objective is the masked-token cross-entropy on it. The model: token and
position embeddings, --layers pre-LayerNorm encoder blocks (multi-head self-attention written with plain
tensor operations, so Hessian-vector products need no special kernels, and a GELU MLP), a tied output layer.
AdamW; the state dict is saved at every step in --steps. Per seed the checkpoints are tracked in one shared
trajectory-PCA plane and in each checkpoint's own top-2 Hessian plane (absolute units: distances in parameter
space); the table gives SMAD, trace and lambda_max against step.

    python examples/pretraining_dynamics.py [--seeds 0 1 2] [--steps 0 250 500 1000 2000 3000] [--width 32]
    python examples/pretraining_dynamics.py --tiny   # the smoke test's size: width 8, 1 layer, steps 0 10 20 (seconds)
    python examples/pretraining_dynamics.py --geometry paper --span 0.5 --resolution 11   # the paper's MultiBERT grids

``--geometry paper``: landscaper 1.3.1's geometry for the grids: ``--span`` is its distance, a fraction of ||theta||
(each own Hessian plane's edge at landscaper_span(distance, resolution) of its own checkpoint's norm, the shared
plane's at that of the last checkpoint), each checkpoint's Hessian eigenvectors rescaled per tensor to sqrt(numel);
the shared plane's PCA directions stay unit vectors.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from landform.determinism import single_threaded
from landform.report.track import build_track_report
from landform.track import track_checkpoints

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import add_track_geometry_args, default_out, spearman, track_geometry, track_spans_text, verdict  # noqa: E402

MODULES = ["collections", "itertools", "functools", "json", "os", "pathlib", "re", "string", "textwrap", "datetime",
           "random", "statistics", "fractions", "decimal", "heapq", "bisect", "shutil", "tempfile", "csv", "argparse",
           "logging", "unittest", "inspect", "typing", "dataclasses", "enum", "copy", "pickle", "zipfile", "gzip"]  # fmt: skip


def docstring_text(modules: list[str] = MODULES) -> str:
    """The docstrings of the public members of ``modules``, sorted and joined (deterministic across runs)."""
    docs = set()
    for name in modules:
        try:
            mod = importlib.import_module(name)
        except ImportError:  # pragma: no cover - every module listed is in the standard library
            continue
        for attr, obj in vars(mod).items():
            if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            doc = inspect.getdoc(obj)
            if doc and len(doc) > 40:
                docs.add(" ".join(doc.split()))
    return "\n".join(sorted(docs))


class Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(w // self.heads), dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, w))
        return x + self.mlp(self.ln2(x))


class TinyBert(nn.Module):
    """Bidirectional encoder for masked-language modelling; the output layer is tied to the token embedding."""

    def __init__(self, vocab: int, seq: int, width: int = 32, layers: int = 2, heads: int = 2) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        nn.init.normal_(self.tok.weight, std=0.02)  # BERT's initialisation: small logits at the start
        self.pos = nn.Parameter(0.02 * torch.randn(seq, width))
        self.blocks = nn.Sequential(*[Block(width, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(width)
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.ln(self.blocks(self.tok(ids) + self.pos[: ids.shape[1]]))
        return h @ self.tok.weight.T + self.bias


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def mask_tokens(ids: torch.Tensor, vocab: int, mask_id: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: 15 % of positions predicted; of those 80 % [MASK], 10 % random, 10 % unchanged."""
    chosen = torch.rand(ids.shape, generator=gen) < 0.15
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    r = torch.rand(ids.shape, generator=gen)
    out = ids.clone()
    out[chosen & (r < 0.8)] = mask_id
    rnd = chosen & (r >= 0.8) & (r < 0.9)
    out[rnd] = torch.randint(0, mask_id, ids.shape, generator=gen)[rnd]
    return out, labels


def windows(text: str, seq: int) -> tuple[torch.Tensor, int, int]:
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([lookup[c] for c in text], dtype=torch.long)
    n = len(ids) // seq
    return ids[: n * seq].view(n, seq), len(chars) + 1, len(chars)  # vocab includes [MASK] = len(chars)


def pretrain(seed: int, args, folder: Path):
    text = docstring_text()
    data, vocab, mask_id = windows(text, args.seq)
    gen = torch.Generator().manual_seed(1234)  # the evaluation split and its masks are the same for every seed
    perm = torch.randperm(len(data), generator=gen)
    ev_ids, tr_ids = data[perm[: args.n_eval]], data[perm[args.n_eval :]]
    ev_in, ev_lab = mask_tokens(ev_ids, vocab, mask_id, gen)
    torch.manual_seed(seed)
    model = TinyBert(vocab, args.seq, args.width, args.layers, args.heads)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    template = TinyBert(vocab, args.seq, args.width, args.layers, args.heads)
    info = {"n_train_windows": len(tr_ids), "vocab": vocab, "chars": len(text)}
    settings = {k: getattr(args, k) for k in ("steps", "width", "layers", "heads", "seq", "batch", "lr")}
    settings.update(seed=seed, torch=torch.__version__, single_threaded=True)
    marker = folder / "training.json"  # checkpoints are reused only by a run with the same training settings
    if marker.exists() and json.loads(marker.read_text()) == settings and all(
        (folder / f"step-{s}.pt").exists() for s in args.steps
    ):
        return template, (ev_in, ev_lab), info
    marker.unlink(missing_ok=True)
    with single_threaded():  # the same checkpoints on any thread count
        for step in range(max(args.steps) + 1):
            if step in args.steps:
                torch.save({k: v.clone() for k, v in model.state_dict().items()}, folder / f"step-{step}.pt")
            if step == max(args.steps):
                break
            idx = torch.randint(0, len(tr_ids), (args.batch,), generator=g)
            x, y = mask_tokens(tr_ids[idx], vocab, mask_id, g)
            model.train()
            opt.zero_grad()
            mlm_loss(model(x), y).backward()
            opt.step()
    marker.write_text(json.dumps(settings))
    return template, (ev_in, ev_lab), info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="default: examples-runs/pretraining_dynamics (with --geometry paper: "
                    "examples-runs/pretraining_dynamics-paper)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, nargs="+", default=[0, 250, 500, 1000, 2000, 3000])
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--seq", type=int, default=48, help="characters per window")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--n-eval", type=int, default=128, help="masked evaluation windows (the objective's data)")
    ap.add_argument("--resolution", type=int, default=9)
    add_track_geometry_args(ap)
    ap.add_argument("--subsamples", type=int, default=2)
    ap.add_argument("--n-hvp", type=int, default=12)
    ap.add_argument("--tol", type=float, default=1e-2)
    ap.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds): seed 0, steps 0 10 20, width 8, "
                    "1 layer, 16 windows of 16 characters, 3 x 3 grids, 2 subsamples, a 3-HVP trace")
    args = ap.parse_args()
    if args.tiny:
        args.seeds, args.steps, args.width, args.layers, args.seq = [0], [0, 10, 20], 8, 1, 16
        args.n_eval, args.batch, args.resolution, args.subsamples, args.n_hvp, args.tol = 16, 8, 3, 2, 3, 1e-1
    args.steps = sorted(set(args.steps))
    args.out = args.out or default_out("pretraining_dynamics", args.geometry)
    geometry = track_geometry(args)
    out = Path(args.out)
    table = []
    t0 = time.perf_counter()
    for seed in args.seeds:
        run = out / f"seed{seed}"
        template, evaluation, info = pretrain(seed, args, run / "checkpoints-in")
        print(f"seed {seed}: {sum(p.numel() for p in template.parameters()):,} parameters, {info}", flush=True)
        s = track_checkpoints(
            template, evaluation, mlm_loss, run / "checkpoints-in", run / "track", dims=2, resolution=args.resolution,
            **geometry, hessian=True, subsample_seeds=tuple(range(args.subsamples)), trace_hvp=args.n_hvp, seed=seed,
            tol=args.tol, log=lambda m: print(m, flush=True),
        )  # fmt: skip
        build_track_report(run / "track")
        print(track_spans_text(seed, s, geometry), flush=True)
        for r in s["rows"]:
            table.append({"seed": seed, **{k: r.get(k) for k in ("step", "loss", "smad", "smad_std", "own_smad",
                                                                  "trace", "trace_stderr", "lambda_max")}})  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.json").write_text(json.dumps(table, indent=1))
    print(f"\n{'seed':>4} {'step':>6} {'MLM loss':>9} {'SMAD pca':>9} {'SMAD own':>9} {'trace':>10} {'λmax':>8}")
    for r in table:
        f = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        print(f"{r['seed']:>4} {r['step']:>6} {r['loss']:>9.4f} {f(r['smad'], '.4f'):>9} {f(r['own_smad'], '.4f'):>9} "
              f"{f(r['trace'], '.3g'):>10} {f(r['lambda_max'], '.3g'):>8}")  # fmt: skip
    print("\nSpearman rank correlation with the step (two-sided p): SMAD (own Hessian plane), trace")
    for seed in args.seeds:
        rows = [r for r in table if r["seed"] == seed]
        st = [r["step"] for r in rows]
        cp = spearman(st, [np.nan if r["smad"] is None else r["smad"] for r in rows])
        cs = spearman(st, [np.nan if r["own_smad"] is None else r["own_smad"] for r in rows])
        ct = spearman(st, [r["trace"] for r in rows])
        print(f"  seed {seed}: {cs[0]:+.2f} (p {cs[1]:.2g}), {ct[0]:+.2f} (p {ct[1]:.2g}) -> "
              f"'SMAD falls while the trace rises': {verdict(cs, ct)}; in the shared PCA plane SMAD "
              f"{cp[0]:+.2f} (p {cp[1]:.2g}): {verdict(cp, ct)}")  # fmt: skip
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

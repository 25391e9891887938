"""Atomistic models (the paper's Table 4): SchNet vs DimeNet++ on QM9 molecules that ship offline.

torch-geometric's SchNet and DimeNet++ (with landform's pure-torch radius graph and triplets instead of
pyg-lib / torch-sparse) trained on random QM9 molecules from the qm9pack wheel, one model per target, with
an L1 loss on the standardised target (the landscape's loss is the MAE divided by the training spread, so
targets compare). For each (model, target): train and test MAE in the target's unit, Hutch++ trace,
lambda_max, SMAD on the top-2 Hessian plane, then the paper's question: does the inter-model difference in
trace track the difference in test MAE across targets (Spearman's rho)?
Writes examples-runs/atomistic/<arch>-<target>/ (summary.json, report.html) and prints one table.

    python examples/atomistic.py [--targets gap mu alpha U0] [--n-train 200] [--epochs 40] [--resolution 11]
    python examples/atomistic.py --tiny   # the smoke test's size: 16 + 8 molecules, width-8 models (seconds)
    python examples/atomistic.py --summarize DIR [DIR ...]   # one table (and correlations) from finished runs

Needs: pip install "landform[examples]"  (torch-geometric and qm9pack)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import add_geometry_args, analyse_model, default_out, geometry_kwargs, write_table  # noqa: E402
from recipes.qm9 import TARGETS, load_qm9, molecule_batches, scaled_l1, train_qm9  # noqa: E402


def spearman(a, b) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN for fewer than 3 pairs."""
    from scipy.stats import spearmanr

    if len(a) < 3:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="default: examples-runs/atomistic (with --geometry paper: examples-runs/atomistic-paper)")
    ap.add_argument("--targets", nargs="+", default=["gap", "mu", "alpha", "U0"], choices=sorted(TARGETS))
    ap.add_argument("--archs", nargs="+", default=["schnet", "dimenet++"], choices=["schnet", "dimenet++"])
    ap.add_argument("--n-train", type=int, default=200, help="training molecules (the docs table: 400)")
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--resolution", type=int, default=11, help="grid points per axis")
    ap.add_argument("--span", type=float, default=0.5, help="half-width along the unit eigenvectors")
    add_geometry_args(ap)
    ap.add_argument("--n-hvp", type=int, default=20, help="Hutch++ budget for the trace")
    ap.add_argument("--tol", type=float, default=1e-3, help="relative residual of the Hessian eigenpairs")
    ap.add_argument("--batch", type=int, default=100, help="molecules per batch in the landscape's loss")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool", type=int, default=None, help="QM9 rows read to draw from (default: all of part 1)")
    ap.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds): 3 targets, 16+8 molecules of the "
                    "first 256 rows, width-8 one-block models with a 3 A cutoff, 1 epoch, 3 x 3, the first run's report only")
    ap.add_argument("--summarize", nargs="+", metavar="DIR", help="print the table and correlations of finished "
                    "runs' folders together (e.g. one --archs/--targets run each) and exit; nothing is recomputed")
    args = ap.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return
    args.out = args.out or default_out("atomistic", args.geometry)
    nets: dict[str, dict] = {"schnet": {}, "dimenet++": {}}
    if args.tiny:
        args.targets, args.n_train, args.n_test, args.epochs = ["gap", "mu", "alpha"], 16, 8, 1
        args.resolution, args.n_hvp, args.tol, args.batch, args.pool = 3, 6, 1e-1, 16, 256
        # a 3 A cutoff: far fewer edges and (DimeNet++'s cost) triplets than 5 A, the same code path
        nets = {"schnet": {"hidden": 8, "interactions": 1, "gaussians": 8, "cutoff": 3.0},
                "dimenet++": {"hidden": 8, "blocks": 1, "cutoff": 3.0}}  # fmt: skip
    out = Path(args.out)
    t0 = time.perf_counter()
    data = load_qm9(tuple(args.targets), n_train=args.n_train, n_test=args.n_test, seed=args.seed, pool=args.pool)
    print(f"QM9: {args.n_train} train / {args.n_test} test molecules of {data[3]['rows_read']} read", flush=True)
    rows = []
    # What must match for rows of separate runs to be joined by --summarize (the archs and targets may differ).
    settings = {k: getattr(args, k) for k in ("geometry", "span", "resolution", "n_train", "n_test", "epochs",
                                              "n_hvp", "tol", "batch", "seed", "pool", "tiny")}  # fmt: skip
    for target in args.targets:
        for arch in args.archs:
            t_run = time.perf_counter()
            model, train, _, info = train_qm9(arch, target, epochs=args.epochs, seed=args.seed, data=data,
                                              net_kwargs=nets[arch])  # fmt: skip
            batches = molecule_batches(train, args.batch)  # keeps the double backward's memory (and time) in check
            s = analyse_model(
                f"{arch}-{target}", model, batches, out, seeds=(), **geometry_kwargs(args), resolution=args.resolution,
                info=info, loss_fn=scaled_l1(info["target_std"]), n_hvp=args.n_hvp, with_sharpness=False,
                tol=args.tol, report=not (args.tiny and rows),  # --tiny: the first run's report only
            )  # fmt: skip
            rows.append(
                {
                    "arch": arch,
                    "target": target,
                    "unit": info["unit"],
                    "params": info["params"],
                    "train_mae": info["train_mae"],
                    "test_mae": info["test_mae"],
                    "target_std": info["target_std"],
                    "trace": s.hessian.trace,
                    "trace_stderr": s.hessian.trace_stderr,
                    "lambda_max": s.hessian.top_eigenvalues[0],
                    "smad": s.topology.smad,
                    "n_minima": s.topology.n_minima,
                    "seconds": time.perf_counter() - t_run,
                    "settings": settings,
                }
            )
            r = rows[-1]
            print(f"{arch}-{target}: test MAE {r['test_mae']:.4g} {r['unit']}, trace {r['trace']:.4g}, "
                  f"SMAD {r['smad']:.3g} ({r['seconds']:.0f} s)", flush=True)  # fmt: skip
    result = report(rows, args.targets)
    write_table(out / "table.json", rows)
    summary = {k: v for k, v in result.items() if k != "rows"}
    (out / "correlation.json").write_text(json.dumps(summary, indent=1, default=float))
    print(f"time {time.perf_counter() - t0:.0f} s; runs and reports under {out}")


def report(rows: list[dict], targets: list[str]) -> dict:
    """Print the table of ``rows`` and, where both models ran on every target, the paper's cross-target
    Spearman correlations; return the correlations."""
    print(f"\n{'target':7s} {'arch':10s} {'train MAE':>10s} {'test MAE':>10s} {'unit':>9s} {'trace':>18s} "
          f"{'lmax':>8s} {'SMAD':>9s} {'minima':>6s}")  # fmt: skip
    for r in rows:
        print(
            f"{r['target']:7s} {r['arch']:10s} {r['train_mae']:10.4g} {r['test_mae']:10.4g} {r['unit']:>9s} "
            f"{r['trace']:9.4g} +- {r['trace_stderr']:<6.2g} {r['lambda_max']:8.4g} {r['smad']:9.3g} {r['n_minima']:6d}"
        )
    result = {"rows": rows}
    by = {(r["arch"], r["target"]): r for r in rows}
    if all((a, t) in by for a in ("schnet", "dimenet++") for t in targets):
        # The paper's test: inter-model trace difference vs inter-model performance gap, across targets.
        # MAEs are divided by each target's training spread so the gaps compare across units.
        d_trace = [by["schnet", t]["trace"] - by["dimenet++", t]["trace"] for t in targets]
        d_mae = [(by["schnet", t]["test_mae"] - by["dimenet++", t]["test_mae"]) / by["schnet", t]["target_std"]
                 for t in targets]  # fmt: skip
        d_smad = [by["schnet", t]["smad"] - by["dimenet++", t]["smad"] for t in targets]
        result["spearman_trace_gap_vs_mae_gap"] = spearman(d_trace, d_mae)
        result["spearman_smad_gap_vs_mae_gap"] = spearman(d_smad, d_mae)
        result["dimenet_better_on"] = [t for t, g in zip(targets, d_mae, strict=True) if g > 0]
        print(f"\nSpearman rho (SchNet - DimeNet++ trace gap vs standardised test-MAE gap, {len(targets)} "
              f"targets): {result['spearman_trace_gap_vs_mae_gap']:.3f}; SMAD gap vs MAE gap: "
              f"{result['spearman_smad_gap_vs_mae_gap']:.3f}")  # fmt: skip
        print(f"DimeNet++ has the lower test MAE on: {result['dimenet_better_on'] or 'none'}")
    else:
        gaps = [f"{a} on {t}" for t in targets for a in ("schnet", "dimenet++") if (a, t) not in by]
        print(f"\nNo cross-target correlations: they need both models on every target (missing: {', '.join(gaps)}).")
    if 0 < len(targets) < 3 and "spearman_trace_gap_vs_mae_gap" in result:
        print(f"(A Spearman correlation needs at least 3 targets; these runs have {len(targets)}: nan.)")
    return result


def summarize(folders: list[str]) -> None:
    """Print the table and correlations of several finished runs' table.json files together (e.g. one run per
    model or per target), reading the saved rows only."""
    rows = []
    need = {"arch", "target", "unit", "train_mae", "test_mae", "target_std", "trace", "trace_stderr", "lambda_max",
            "smad", "n_minima"}  # fmt: skip
    for f in folders:
        path = Path(f) / "table.json"
        if not path.is_file():
            raise SystemExit(f"--summarize: {path} does not exist; give folders written by this script.")
        try:
            table = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise SystemExit(f"--summarize: {path} is not valid JSON ({e}); rerun the run that wrote it.") from None
        bad = "" if isinstance(table, list) and table else "is not a non-empty list of rows"
        for r in table if not bad else []:
            missing = sorted(need - set(r)) if isinstance(r, dict) else ["every key"]
            if missing or r["arch"] not in ("schnet", "dimenet++"):
                bad = f"has a row without {missing}" if missing else f"has an unknown model {r['arch']!r}"
                break
        if bad:
            raise SystemExit(f"--summarize: {path} {bad}; give folders written by examples/atomistic.py.")
        rows.extend(table)
    _check_settings(rows, folders)
    targets = list(dict.fromkeys(r["target"] for r in rows))
    seen = [(r["arch"], r["target"]) for r in rows]
    if len(seen) != len(set(seen)):
        raise SystemExit("--summarize: two folders hold the same (model, target) run; give each once.")
    order = {"schnet": 0, "dimenet++": 1}
    rows.sort(key=lambda r: (targets.index(r["target"]), order[r["arch"]]))
    report(rows, targets)


def _check_settings(rows: list[dict], folders: list[str]) -> None:
    """Refuse to join rows whose runs used different settings (geometry, span, grid, training...): their gaps
    would mix two experiments. Rows written before the settings were recorded are joined with a warning."""
    recorded = [r["settings"] for r in rows if isinstance(r.get("settings"), dict)]
    if len(recorded) < len(rows):
        print(f"--summarize: {len(rows) - len(recorded)} of {len(rows)} rows were written before runs recorded "
              "their settings; join only runs of one command (same --geometry, --span, --resolution, --n-train, "
              "--epochs, --seed).")  # fmt: skip
    for other in recorded[1:]:
        differ = sorted(k for k in set(recorded[0]) | set(other) if recorded[0].get(k) != other.get(k))
        if differ:
            diffs = "; ".join(f"{k}: {recorded[0].get(k)!r} vs {other.get(k)!r}" for k in differ)
            raise SystemExit(f"--summarize: the runs in {', '.join(folders)} used different settings ({diffs}); "
                             "join only runs made with the same settings.")  # fmt: skip


if __name__ == "__main__":
    main()

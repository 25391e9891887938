"""landform track: per-checkpoint metrics against dense Hessians and direct evaluation; resume; refusal."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from landform import InputError, StoreError
from landform.metrics.diagrams import bottleneck_distance
from landform.topology import merge_tree, pairs_from_tree, smad
from landform.track import track_checkpoints


class Tiny(nn.Module):
    """2 -> 3 -> 2 with a BatchNorm (its running statistics are part of each checkpoint): 23 parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 3)
        self.bn = nn.BatchNorm1d(3)
        self.b = nn.Linear(3, 2)

    def forward(self, x):
        return self.b(torch.tanh(self.bn(self.a(x))))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.manual_seed(0)
    model = Tiny()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(48, 2, generator=g)
    y = (x[:, 0] * x[:, 1] > 0).long()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    folder = tmp_path_factory.mktemp("cks")
    for step in range(1, 41):
        model.train()
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if step % 10 == 0:
            torch.save(copy.deepcopy(model.state_dict()), folder / f"step-{step}.pt")
    return Tiny(), (x, y), folder


def _dense(model, state, data):
    m = copy.deepcopy(model)
    m.load_state_dict(state)
    m.eval()
    names = [n for n, _ in m.named_parameters()]
    params = tuple(p.detach().clone() for p in m.parameters())

    def f(*ps):
        out = torch.func.functional_call(m, dict(zip(names, ps, strict=True)), (data[0],))
        return nn.functional.cross_entropy(out, data[1])

    blocks = torch.autograd.functional.hessian(f, params)
    H = torch.cat([torch.cat([blocks[i][j].reshape(params[i].numel(), params[j].numel()) for j in range(len(params))], 1) for i in range(len(params))], 0)
    return float(f(*params)), H.double().numpy()


def test_track_matches_direct_evaluation_and_dense_hessians(trained, tmp_path):
    model, data, folder = trained
    kw = dict(dims=2, resolution=7, hessian=True, subsample_seeds=(0, 1), trace_hvp=60, seed=0)
    s = track_checkpoints(model, data, nn.functional.cross_entropy, folder, tmp_path / "run", **kw)
    rows = s["rows"]
    assert [r["step"] for r in rows] == [10, 20, 30, 40]
    prev = None
    for i, r in enumerate(rows):
        state = torch.load(folder / f"step-{r['step']}.pt", weights_only=True)
        loss, H = _dense(model, state, data)
        ev = np.linalg.eigvalsh(H)
        assert r["loss"] == pytest.approx(loss, rel=1e-5)  # the checkpoint's own BatchNorm statistics
        assert r["lambda_max"] == pytest.approx(ev[-1], rel=1e-3)
        assert r["own_eigenvalues"][1] == pytest.approx(ev[-2], rel=1e-3)
        assert r["trace"] == pytest.approx(np.trace(H), rel=1e-3, abs=1e-4)  # Hutch++, 60 HVPs for P = 23
        ck_dir = tmp_path / "run" / "checkpoints" / f"{i:03d}-step-{r['step']}.pt"
        values = np.load(ck_dir / "shared" / "values.npy")
        assert values[3, 3] == pytest.approx(loss, rel=1e-5)  # centred at this checkpoint
        tree = merge_tree(values)
        assert r["smad"] == pytest.approx(smad(tree)) and r["n_minima"] == tree.n_minima
        pairs = pairs_from_tree(tree)
        assert r["bottleneck_prev"] == (None if prev is None else pytest.approx(bottleneck_distance(prev, pairs)))
        assert np.std(r["smad_subsamples"], ddof=1) == pytest.approx(r["smad_std"])
        prev = pairs
    t = s["trajectory"]
    assert t["off_plane"][-1] == 0.0 and len(t["coords"]) == 4


def test_track_resumes_per_checkpoint_and_refuses_another_run(trained, tmp_path):
    model, data, folder = trained
    kw = dict(dims=2, resolution=5, subsample_seeds=(), trace_hvp=0)
    out = tmp_path / "run"
    first = track_checkpoints(model, data, nn.functional.cross_entropy, folder, out, **kw)
    third = out / "checkpoints" / "002-step-30.pt" / "metrics.json"
    kept = (out / "checkpoints" / "000-step-10.pt" / "metrics.json").stat().st_mtime_ns
    third.unlink()  # as if killed while the third checkpoint ran
    lines: list[str] = []
    again = track_checkpoints(model, data, nn.functional.cross_entropy, folder, out, log=lines.append, **kw)
    assert sum("skipped" in ln for ln in lines) == 3 and third.exists()
    assert (out / "checkpoints" / "000-step-10.pt" / "metrics.json").stat().st_mtime_ns == kept
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(again["rows"]) == strip(first["rows"])
    with pytest.raises(StoreError, match="other checkpoints, data or settings"):
        track_checkpoints(model, data, nn.functional.cross_entropy, folder, out, **dict(kw, resolution=7))
    json.loads((out / "summary.json").read_text())


def test_track_report_slider_shows_each_checkpoint_with_the_path_relative_to_it(trained, tmp_path):
    """The checkpoint slider is the report's frame viewer: moving it in chromium shows each checkpoint's shared
    landscape and the trajectory relative to that checkpoint."""
    from conftest import require_chromium

    from landform.projection import load_trajectory
    from landform.report.track import build_track_report
    from landform.store import load_landscape

    model, data, folder = trained
    out = tmp_path / "run"
    s = track_checkpoints(model, data, nn.functional.cross_entropy, folder, out, resolution=5, subsample_seeds=(), trace_hvp=0)
    traj = load_trajectory(out / "trajectory.npz")
    path = build_track_report(out)
    page_text = path.read_text()
    assert "<script src=" not in page_text  # plotly.js is embedded, no network
    assert "LFViewer.mount(\"track-slider\")" in page_text and "step-40.pt" in page_text
    sync_api = require_chromium()
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.resolve().as_uri(), wait_until="load", timeout=120_000)
            assert page.get_attribute("#track-slider", "data-state").split(",")[0] == "3"  # starts at the last
            assert page.eval_on_selector("#track-slider-s0", "e => +e.max") == 3
            seen = []
            for k in (0, 2, 1, 3):
                page.evaluate(
                    "k => { const s = document.getElementById('track-slider-s0'); s.value = k; s.dispatchEvent(new Event('input')); }",
                    k,
                )
                heat, lines, marks = page.evaluate(
                    "() => { const d = document.getElementById('track-slider-plot').data; "
                    "const t = ['heatmap', 'scatter'].map(y => d.filter(x => x.type === y)); "
                    "return [t[0][0], t[1].find(x => x.mode === 'lines'), t[1].find(x => x.name === 'critical points')]; }"
                )
                want = load_landscape(out / "checkpoints" / f"{k:03d}-step-{10 * (k + 1)}.pt" / "shared")
                np.testing.assert_allclose(np.asarray(heat["customdata"], float), want.values.T, rtol=1e-6)
                np.testing.assert_allclose(heat["x"], want.axes[0])
                np.testing.assert_allclose(lines["x"], traj.coords[:, 0] - traj.coords[k, 0], atol=1e-12)
                np.testing.assert_allclose(lines["y"], traj.coords[:, 1] - traj.coords[k, 1], atol=1e-12)
                here = marks["text"].index(s["rows"][k]["name"])
                assert (marks["x"][here], marks["y"][here]) == (0.0, 0.0)
                assert f"checkpoint = {s['rows'][k]['name']}" in page.inner_text("#track-slider .lf-coords")
                seen.append(np.asarray(heat["customdata"], float))
            assert not np.allclose(seen[0], seen[3])  # the checkpoints' landscapes differ: the slider shows each
        finally:
            browser.close()
    assert errors == [], errors


RECIPE = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 3)
        self.b = nn.Linear(3, 2)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


def recipe():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 2, generator=g)
    return Net(), (x, (x[:, 0] > 0).long()), nn.functional.cross_entropy
'''


def test_cli_track_runs_a_recipe_over_a_glob_and_reports_bad_input(tmp_path, capsys):
    import importlib.util

    from landform.cli import main

    (tmp_path / "rec.py").write_text(RECIPE)
    spec = importlib.util.spec_from_file_location("rec_for_test", tmp_path / "rec.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.Net()
    for step in (5, 50, 15):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.05 * step * torch.ones_like(p) + 0.01 * torch.randn_like(p))
        torch.save(copy.deepcopy(net.state_dict()), tmp_path / f"ck-{step}.pt")
    base = ["track", str(tmp_path / "rec.py"), "--resolution", "5", "--subsamples", "0", "--trace-hvp", "0", "--quiet"]
    rc = main([*base, "--checkpoints", str(tmp_path / "ck-*.pt"), "--out", str(tmp_path / "run"), "--no-report"])
    assert rc == 0
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert [r["step"] for r in s["rows"]] == [5, 15, 50]
    assert "ck-50.pt" in capsys.readouterr().out
    assert main([*base, "--checkpoints", str(tmp_path / "none-*.pt"), "--out", str(tmp_path / "r2")]) == 1
    assert "matches no file" in capsys.readouterr().err
    one = [a if a != "0" or i != base.index("--subsamples") + 1 else "1" for i, a in enumerate(base)]
    assert main([*one, "--checkpoints", str(tmp_path), "--out", str(tmp_path / "r3")]) == 1
    assert "--subsamples" in capsys.readouterr().err
    ck = ["--checkpoints", str(tmp_path / "ck-*.pt")]
    assert main([*base, *ck, "--span-units", "relative", "--out", str(tmp_path / "r4")]) == 1
    assert "--span-units relative: give --span" in capsys.readouterr().err
    assert main([*base, *ck, "--own-normalization", "numel", "--out", str(tmp_path / "r5")]) == 1
    assert "--own-normalization: only used with --hessian" in capsys.readouterr().err
    rc = main([*base, *ck, "--span-units", "relative", "--span", "0.05", "--out", str(tmp_path / "r6"), "--no-report"])
    assert rc == 0
    assert json.loads((tmp_path / "r6" / "summary.json").read_text())["geometry"]["span_units"] == "relative"


def test_track_in_relative_units_puts_each_edge_at_a_fraction_of_the_norm(trained, tmp_path):
    # Shared grid: edge at 0.05 x ||theta|| of the last checkpoint (PCA directions are orthonormal); each own grid,
    # with "numel" directions (every tensor block rescaled to sqrt(numel), so ||d|| = sqrt(P) = sqrt(23)), at 0.05 x
    # ||theta|| of its own checkpoint. The norms here come from the state dicts, not from landform.
    from landform import load_landscape

    model, data, folder = trained
    kw = dict(dims=2, resolution=5, hessian=True, subsample_seeds=(), trace_hvp=0, span=0.05, span_units="relative",
              own_normalization="numel")  # fmt: skip
    s = track_checkpoints(model, data, nn.functional.cross_entropy, folder, tmp_path / "run", **kw)
    trainable = [n for n, p in model.named_parameters()]

    def norm(step):
        state = torch.load(folder / f"step-{step}.pt", weights_only=True)
        return float(torch.sqrt(sum((state[n].double() ** 2).sum() for n in trainable)))

    last = norm(40)
    np.testing.assert_allclose(s["span"], [0.05 * last] * 2, rtol=1e-6)
    assert s["geometry"]["span_units"] == "relative"
    for i, r in enumerate(s["rows"]):
        ck_dir = tmp_path / "run" / "checkpoints" / f"{i:03d}-step-{r['step']}.pt"
        shared = load_landscape(ck_dir / "shared")
        assert [a[-1] for a in shared.axes] == pytest.approx([0.05 * last] * 2, rel=1e-6)
        own = load_landscape(ck_dir / "own")
        assert [a[-1] for a in own.axes] == pytest.approx([0.05 * norm(r["step"]) / 23**0.5] * 2, rel=1e-5)
    from pathlib import Path

    from landform.report.track import build_track_report

    page = Path(build_track_report(tmp_path / "run")).read_text()
    assert "(= 0.05, 0.05 x ||theta|| of the last checkpoint" in page
    with pytest.raises(InputError, match="span_units='relative' needs a span"):
        track_checkpoints(model, data, nn.functional.cross_entropy, folder, tmp_path / "r2", span_units="relative")


@pytest.mark.parametrize("script", ["training_dynamics.py", "pretraining_dynamics.py"])
def test_case_study_scripts_run_at_tiny_size(tmp_path, script):
    """Both case-study scripts at --tiny (seconds): the printed table is the track's summary, whose SMADs are
    those of the saved landscapes, and the subsample spread ran."""
    import subprocess
    import sys
    from pathlib import Path

    from landform import load_landscape

    ex = Path(__file__).resolve().parents[1] / "examples" / script
    proc = subprocess.run([sys.executable, str(ex), "--tiny", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((tmp_path / "table.json").read_text())
    assert [r["step"] for r in rows] == ([0, 1, 2] if script == "training_dynamics.py" else [0, 10, 20])
    assert rows[-1]["loss"] < rows[0]["loss"]  # the checkpoints come from a run that trains
    track = tmp_path / "seed0" / "track"
    assert (track / "report.html").exists()
    summary = json.loads((track / "summary.json").read_text())["rows"]
    folders = sorted(p for p in (track / "checkpoints").iterdir() if p.is_dir())
    assert len(summary) == len(rows) == len(folders) == 3
    for r, s, folder in zip(rows, summary, folders, strict=True):
        assert {k: r[k] for k in ("step", "loss", "smad", "own_smad", "trace", "lambda_max")} == {
            k: s[k] for k in ("step", "loss", "smad", "own_smad", "trace", "lambda_max")
        }
        assert r["smad"] == smad(load_landscape(folder / "shared").values)
        assert r["own_smad"] == smad(load_landscape(folder / "own").values)
        assert len(s["smad_subsamples"]) == 2  # --tiny keeps the subsample spread, on its 2 seeds
        assert r["smad_std"] == pytest.approx(np.std(s["smad_subsamples"], ddof=1), abs=1e-15)


@pytest.mark.slow
@pytest.mark.parametrize("script", ["training_dynamics.py", "pretraining_dynamics.py"])
def test_case_study_scripts_in_the_paper_geometry(tmp_path, script):
    """--geometry paper --span 0.5: every own Hessian grid's edge at landscaper_span(0.5, 3) of its own
    checkpoint's norm along sqrt(numel)-rescaled directions, the shared grid's at that of the last checkpoint."""
    import subprocess
    import sys
    from pathlib import Path

    from landform import landscaper_span, load_landscape

    ex = Path(__file__).resolve().parents[1] / "examples" / script
    proc = subprocess.run([sys.executable, str(ex), "--tiny", "--geometry", "paper", "--span", "0.5", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    track = tmp_path / "seed0" / "track"
    summary = json.loads((track / "summary.json").read_text())
    rel = landscaper_span(0.5, 3)
    assert summary["geometry"]["span_units"] == "relative"
    assert summary["geometry"]["relative_span"] == pytest.approx([rel, rel], rel=1e-12)
    norms = []
    for r in summary["rows"]:
        g = r["own_geometry"]
        assert g["span_units"] == "relative" and g["relative_span"] == pytest.approx([rel, rel], rel=1e-12)
        norms.append(g["theta0_norm"])
    assert summary["geometry"]["theta0_norm"] == pytest.approx(norms[-1])  # the shared grid: the last checkpoint
    assert len(set(norms)) == 3  # each own grid is scaled by its own checkpoint's norm
    own = load_landscape(sorted(p for p in (track / "checkpoints").iterdir() if p.is_dir())[0] / "own")
    assert own.directions["normalization"] == "numel"


def test_a_run_folder_written_before_span_units_existed_resumes(trained, tmp_path):
    # Folders written before span_units / own_normalization were settings (the session-4 runs) hold a key hashed
    # without them; at their defaults the run is the same, so it resumes (directions.npz kept); the same span in
    # relative units is another run and is refused.
    import hashlib

    model, data, folder = trained
    kw = dict(dims=2, resolution=5, subsample_seeds=(), trace_hvp=0, span=0.05)
    run = tmp_path / "run"
    track_checkpoints(model, data, nn.functional.cross_entropy, folder, run, **kw)
    manifest = json.loads((run / "track.json").read_text())
    old = {k: v for k, v in manifest["settings"].items() if k not in ("span_units", "own_normalization")}
    fps = [c["fingerprint"] for c in manifest["checkpoints"]]
    manifest.update(settings=old, key=hashlib.sha256(json.dumps([old, fps], sort_keys=True).encode()).hexdigest())
    (run / "track.json").write_text(json.dumps(manifest))
    stamp = (run / "directions.npz").stat().st_mtime_ns
    s = track_checkpoints(model, data, nn.functional.cross_entropy, folder, run, **kw)
    assert s["span_units"] == "absolute" and (run / "directions.npz").stat().st_mtime_ns == stamp
    with pytest.raises(StoreError, match="other checkpoints, data or settings"):
        track_checkpoints(model, data, nn.functional.cross_entropy, folder, run, span_units="relative", **kw)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(span=[(-0.05, 0.1), 0.05], span_units="relative"), r"span: with hessian=True or span_units='relative'"),
        (dict(span=[(-0.5, 1.0), 0.5], hessian=True), r"span: with hessian=True or span_units='relative'"),
        (dict(span=0.05, hessian=True, own_normalization="bogus"), "own_normalization: expected None"),
        (dict(span=0.05, own_normalization="numel"), "own_normalization: only used with hessian=True"),
    ],
)
def test_track_refuses_spans_and_normalizations_it_cannot_use(trained, tmp_path, kw, message):
    # (lo, hi) spans reached float() (a TypeError after the shared stage); own_normalization was checked only at
    # the first own-Hessian grid, or silently ignored without hessian=True. Refused before anything is written.
    model, data, folder = trained
    with pytest.raises(InputError, match=message):
        track_checkpoints(model, data, nn.functional.cross_entropy, folder, tmp_path / "r", dims=2, resolution=5,
                          subsample_seeds=(), trace_hvp=0, **kw)
    assert not (tmp_path / "r").exists()

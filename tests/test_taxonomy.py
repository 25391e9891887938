"""The taxonomy of Yang et al. (2021): the phase rule on hand cases, and the measured metrics against
independent computations (dense Hessians, the loss along the path computed by hand, CKA of the outputs)."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from landform import InputError
from landform.metrics import cka, classify_phase, taxonomy


@pytest.mark.parametrize(
    ("loss", "mc", "cka_", "phase"),
    [
        (1.0, -0.5, None, "I"),
        (1.0, 0.5, None, "II"),
        (1.0, -0.01, None, "II"),  # within the mc tolerance: no barrier
        (0.05, -0.03, 0.99, "III"),  # just past the tolerance: a barrier
        (0.05, 0.0, 0.9, "IV-B"),
        (0.05, 0.0, 0.5, "IV-A"),
        (0.05, 0.0, None, "IV"),
        (0.1, 0.0, 0.9, "II"),  # the loss threshold is strict: 0.1 is not well trained
    ],
)
def test_phase_rule(loss, mc, cka_, phase):
    assert classify_phase(loss, mc, cka_) == phase


def test_thresholds_are_named_and_overridable():
    assert classify_phase(0.5, 0.0, 0.9, thresholds={"loss": 1.0}) == "IV-B"
    assert classify_phase(0.05, 0.0, 0.7, thresholds={"cka": 0.6}) == "IV-B"
    with pytest.raises(InputError, match="thresholds: unknown key 'acc'"):
        classify_phase(0.05, 0.0, thresholds={"acc": 1.0})
    with pytest.raises(InputError, match="mc: expected a finite number"):
        classify_phase(0.05, float("nan"))


def _seeds(k=2):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    models = []
    for s in range(k):
        torch.manual_seed(s)
        m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
        opt = torch.optim.Adam(m.parameters(), lr=0.05)
        for _ in range(60):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
        models.append(m)
    return models, x, y


def _dense_hessian(model, x, y):
    named = list(model.named_parameters())
    theta = torch.cat([p.detach().reshape(-1) for _, p in named])

    def f(t):
        params, i = {}, 0
        for n, p in named:
            params[n] = t[i : i + p.numel()].view_as(p)
            i += p.numel()
        return nn.functional.cross_entropy(functional_call(model, params, (x,)), y)

    return torch.autograd.functional.hessian(f, theta)


def test_measured_metrics_match_independent_computations():
    models, x, y = _seeds()
    P = sum(p.numel() for p in models[0].parameters())
    tx = taxonomy(models, (x, y), nn.functional.cross_entropy, curve="linear", trace_hvp=3 * P)
    for i, m in enumerate(models):
        with torch.no_grad():
            assert tx.per_model["train_loss"][i] == pytest.approx(float(nn.functional.cross_entropy(m(x), y)))
        H = _dense_hessian(m, x, y)
        assert tx.per_model["top_eigenvalue"][i] == pytest.approx(float(torch.linalg.eigvalsh(H)[-1]), rel=1e-3)
        assert tx.per_model["trace"][i] == pytest.approx(float(H.trace()), rel=1e-8)
    # mode connectivity by hand on the linear path: (L(0) + L(1)) / 2 - L(t*), t* maximising its magnitude
    a, b = (torch.cat([p.detach().reshape(-1) for p in m.parameters()]) for m in models)
    work = copy.deepcopy(models[0])
    losses = []
    for t in np.linspace(0, 1, 21):
        theta = (1 - t) * a + t * b
        with torch.no_grad():
            i = 0
            for p in work.parameters():
                p.copy_(theta[i : i + p.numel()].view_as(p))
                i += p.numel()
            losses.append(float(nn.functional.cross_entropy(work(x), y)))
    losses = np.asarray(losses)
    gap = (losses[0] + losses[-1]) / 2 - losses
    assert tx.mc == pytest.approx(gap[np.argmax(np.abs(gap))], rel=1e-6)
    with torch.no_grad():
        assert tx.cka == pytest.approx(cka(models[0](x).numpy(), models[1](x).numpy()), rel=1e-9)
    assert tx.phase == classify_phase(tx.train_loss, tx.mc, tx.cka)
    assert tx.as_dict()["phase_description"]


def test_needs_two_models():
    models, x, y = _seeds(1)
    with pytest.raises(InputError, match="pass two or more models"):
        taxonomy(models, (x, y), nn.functional.cross_entropy)


def test_a_collapsed_seed_gets_nan_cka_and_the_rest_still_measure():
    """A seed whose outputs are the same for every input (here: every ReLU dead, as width-2 MLPs trained at
    a large batch do in examples/taxonomy_sweep.py) has no CKA (0/0): its pairs get NaN and a warning, the mean
    is over the other pairs (checked against cka), and the phase still follows from loss and mc."""
    models, x, y = _seeds(3)
    dead = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        dead[0].weight.zero_(), dead[0].bias.fill_(-1.0)  # every hidden unit off: the output is dead[2].bias
    models = [models[0], dead, models[1]]
    with pytest.warns(UserWarning, match=r"model\(s\) \[1\] of 3 \(train loss [0-9.]+\) give the same representation"):
        tx = taxonomy(models, (x, y), nn.functional.cross_entropy, curve="linear", trace_hvp=6)
    assert np.isnan(tx.per_pair["cka"][0]) and np.isnan(tx.per_pair["cka"][2])  # pairs (0, 1) and (1, 2)
    with torch.no_grad():
        assert tx.per_pair["cka"][1] == pytest.approx(cka(models[0](x).numpy(), models[2](x).numpy()), rel=1e-9)
    assert tx.cka == tx.per_pair["cka"][1]
    assert tx.collapsed == (1,) and tx.as_dict()["collapsed"] == [1]
    assert tx.phase == classify_phase(tx.train_loss, tx.mc, tx.cka)
    with pytest.warns(UserWarning, match="collapsed"):
        two = taxonomy([models[0], dead], (x, y), nn.functional.cross_entropy, curve="linear", trace_hvp=6)
    assert np.isnan(two.cka) and two.phase == classify_phase(two.train_loss, two.mc)
    strict = json.loads(json.dumps(two.as_dict(), allow_nan=False))  # strict JSON: null, not NaN
    assert strict["cka"] is None and strict["per_pair"]["cka"] == [None]
    assert json.loads(json.dumps(tx.as_dict(), allow_nan=False))["per_pair"]["cka"] == [None, tx.cka, None]


def _dead(bias: float) -> nn.Module:
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        m[0].weight.zero_(), m[0].bias.fill_(-1.0), m[2].bias.copy_(torch.tensor([bias, -bias]))
    return m


def test_collapse_warnings_of_a_sweep_are_not_hidden_and_one_input_is_refused():
    """Python prints a warning once per text and place: a sweep calling taxonomy from one line must still warn
    in every cell with a collapsed seed (the 3 x 3 sweep's width 2 / batch 512 cell was silent). The text names
    the count of pairs with a CKA and their mean. One training input has no CKA at all: an InputError, not a
    "collapsed" verdict for every model."""
    models, x, y = _seeds(3)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        for other in (models[1], models[2]):  # two cells, the same line, the same collapsed index
            tx = taxonomy([models[0], _dead(0.0), other], (x, y), nn.functional.cross_entropy, curve="linear",
                          trace_hvp=4)  # fmt: skip
    texts = [str(w.message) for w in seen if "collapsed" in str(w.message)]
    assert len(texts) == 2, texts
    assert f"the mean CKA, {tx.cka:.4g}, is over the other 1 of 3 pairs" in texts[1]
    with pytest.raises(InputError, match="data: the CKA between seeds needs at least 2 training inputs, got 1"):
        taxonomy(models[:2], (x[:1], y[:1]), nn.functional.cross_entropy, curve="linear", trace_hvp=4)


def test_well_trained_connected_seeds_without_any_cka_read_as_unsplit_phase_iv():
    """Two collapsed seeds that still fit the data (every label is class 0 and both output a large class-0
    logit) are well trained and connected, but no pair has a CKA: the phase is "IV", not IV-A or IV-B."""
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.zeros(20, dtype=torch.long)
    with pytest.warns(UserWarning, match="collapsed"):
        tx = taxonomy([_dead(6.0), _dead(7.0)], (x, y), nn.functional.cross_entropy, curve="linear", trace_hvp=4)
    assert tx.train_loss < 0.1 and tx.mc >= -0.02 and np.isnan(tx.cka) and tx.collapsed == (0, 1)
    assert tx.phase == "IV"


def test_a_model_with_nan_outputs_is_named_before_any_curve_is_trained(monkeypatch):
    """A seed whose representation is NaN (a custom layer here; NaN weights already fail at its loss) is refused
    with its index before mode connectivity spends minutes on curves."""
    from landform.errors import NonFiniteInputError
    from landform.metrics import connectivity

    models, x, y = _seeds(3)

    def hidden(m, inputs):  # the first layer's output; model 2's is NaN
        h = m[0](inputs)
        return h * float("nan") if m is models[2] else h

    calls = []
    monkeypatch.setattr(connectivity, "mode_connectivity", lambda *a, **k: calls.append(1))
    with pytest.raises(NonFiniteInputError, match=r"model\(s\) \[2\] give NaN or inf representations"):
        taxonomy(models, (x, y), nn.functional.cross_entropy, curve="linear", trace_hvp=6, representation=hidden)
    assert calls == []

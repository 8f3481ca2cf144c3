"""Batched per-example gradients equal a per-example autograd loop (float64, tight tolerance)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerinf import gradients, models, modules
from layerinf.config import RunConfig
from layerinf.encoding import Encoded

TEXTS = [
    "a gripping, funny and deeply humane film",
    "the plot is thin and the jokes fall flat flat flat",
    "not good",
    "an utterly forgettable sequel that nobody asked for , really",
    "good good good",
    "i laughed , i cried , i bought the soundtrack",
    "dull",
]


@pytest.fixture(scope="module")
def setup():
    cfg = RunConfig(model="tiny", dtype="float64", lora_dropout=0.0)
    tok = models.load_tokenizer(cfg)
    model = models.load_model(cfg, 2, tok)
    # Move the LoRA B matrices away from their zero initialisation so every gradient is non-trivial.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    enc = Encoded([tok(t)["input_ids"] for t in TEXTS], np.array([1, 0, 0, 0, 1, 1, 0]))
    return cfg, tok, model, modules.module_map(model), enc


def loop_gradients(model, mm, enc, pad_id):
    """Reference: one example at a time, plain autograd on the parameters (no padding at all)."""
    model.eval()
    emb = mm.embedding.weight
    emb.requires_grad_(True)
    params = {name: getattr(mod, which) for name, (mod, which) in mm.linears.items()}
    out = []
    for b in range(len(enc)):
        ids = torch.tensor([enc.input_ids[b]])
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([int(enc.labels[b])]))
        grads = torch.autograd.grad(loss, [*params.values(), emb])
        out.append(
            {**{n: g.flatten().numpy() for n, g in zip(params, grads[:-1], strict=True)}, "we": grads[-1].numpy()}
        )
    emb.requires_grad_(False)
    return out


def test_batched_equals_loop(setup, tmp_path):
    _, tok, model, mm, enc = setup
    ref = loop_gradients(model, mm, enc, tok.pad_token_id)
    got = gradients.collect(model, mm, enc, tok.pad_token_id, batch_size=3, store=tmp_path, progress=False)
    assert set(got.dense) == set(mm.linears)
    for b in range(len(enc)):
        for name in mm.linears:
            np.testing.assert_allclose(got.dense[name][b], ref[b][name], rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(got.we.dense(b), ref[b]["we"], rtol=1e-9, atol=1e-12)
    # Repeated tokens are summed into one row per token id; the counts say how often each occurred.
    lo, hi = got.we.offsets[1], got.we.offsets[2]
    flat_id = tok.convert_tokens_to_ids("flat")
    assert got.token_counts[lo:hi][list(got.we.tokens[lo:hi]).index(flat_id)] == 3
    np.testing.assert_allclose(got.we.norms_sq(), [np.sum(r["we"] ** 2) for r in ref], rtol=1e-9)


def test_store_resumes_without_recomputing(setup, tmp_path, monkeypatch):
    _, tok, model, mm, enc = setup
    monkeypatch.setattr(gradients, "CHUNK_EXAMPLES", 3)
    first = gradients.collect(model, mm, enc, tok.pad_token_id, batch_size=2, store=tmp_path, progress=False)
    chunks = sorted(tmp_path.glob("chunk_*.safetensors"))
    assert len(chunks) == 3
    chunks[1].write_bytes(chunks[1].read_bytes()[:50])  # a truncated chunk is recomputed, never used
    chunks[2].unlink()  # a missing chunk is computed
    calls = []
    real = gradients._chunk_arrays
    monkeypatch.setattr(gradients, "_chunk_arrays", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = gradients.collect(model, mm, enc, tok.pad_token_id, batch_size=2, store=tmp_path, progress=False)
    assert len(calls) == 2
    for name in first.dense:
        np.testing.assert_array_equal(first.dense[name], again.dense[name])
    np.testing.assert_array_equal(first.we.rows, again.we.rows)


def test_batch_size_independent(setup):
    _, tok, model, mm, enc = setup
    a = gradients.collect(model, mm, enc, tok.pad_token_id, batch_size=1, progress=False)
    b = gradients.collect(model, mm, enc, tok.pad_token_id, batch_size=7, progress=False)
    for name in a.dense:
        np.testing.assert_allclose(a.dense[name], b.dense[name], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-12)


def test_batches_are_formed_longest_first_to_save_padding(setup, monkeypatch):
    """Within a chunk, examples are batched by decreasing length (less padding), and the results
    still come back in the input order (test_batched_equals_loop checks the values)."""
    _, tok, model, mm, enc = setup
    widths = []
    real = gradients.collate
    monkeypatch.setattr(
        gradients,
        "collate",
        lambda e, idx, *a: widths.append(max(len(e.input_ids[i]) for i in idx)) or real(e, idx, *a),
    )
    got = gradients.collect(model, mm, enc, tok.pad_token_id, batch_size=3, progress=False)
    lengths = sorted((len(ids) for ids in enc.input_ids), reverse=True)
    assert widths == [lengths[0], lengths[3], lengths[6]]  # each batch padded to its own longest example
    unsorted_width = sum(
        max(len(enc.input_ids[i]) for i in range(s, min(s + 3, len(enc)))) for s in range(0, len(enc), 3)
    )
    assert sum(widths) < unsorted_width
    np.testing.assert_array_equal(np.diff(got.we.offsets) > 0, True)


def test_selected_modules_give_the_same_gradients(setup):
    """`ModuleMap.select` computes only the chosen modules, with the values of a full collection."""
    _, tok, model, mm, enc = setup
    names = [name for name in mm.linears if name.startswith("layer1.")][:2]
    full = gradients.collect(model, mm, enc, tok.pad_token_id, batch_size=3, progress=False)
    part = gradients.collect(
        model, mm.select(names), enc, tok.pad_token_id, batch_size=3, with_we=False, progress=False
    )
    assert list(part.dense) == names and [i.name for i in part.infos] == names and part.we is None
    for name in names:
        np.testing.assert_allclose(part.dense[name], full.dense[name], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("names", "match"),
    [
        ([], "non-empty list"),
        ("layer1.query.lora_A", "non-empty list"),
        (["we"], "with_we=True"),
        (["layer9.query.lora_A"], r"not dense modules of this model.*known: layer0\.query\.lora_A"),
    ],
)
def test_select_refuses_unknown_modules(setup, names, match):
    with pytest.raises(ValueError, match=match):
        setup[3].select(names)

"""Any architecture: tiny random models of each family, saved to disk and loaded like a user's model.

Every model is built from a config (hidden size 32, 2 layers), saved with `save_pretrained` next to
MiniLM's tokenizer (vocabulary size = the tokenizer's length, so every id fits) and loaded through
`models.load_model(RunConfig(model=<directory>))`, exactly as ``layerinf run --model <directory>``
does. Decoders get a tokenizer without a pad token (like real Llama/GPT-2 tokenizers), so the
pad = end-of-sequence fallback is exercised too. Offline; a few seconds in total.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from torch import nn

from layerinf import gradients, models, modules
from layerinf.config import ConfigError, RunConfig
from layerinf.encoding import Encoded

TEXTS = ["a gripping , funny and humane film", "the plot is thin thin thin", "dull"]
LABELS = np.array([1, 0, 0])
DECODERS = ("llama", "mistral", "qwen2", "gpt2")
_SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
_DECODER = dict(num_key_value_heads=1, max_position_embeddings=128, **_SMALL)
#: Architecture -> config factory (keyword arguments: vocabulary size, labels and special token ids).
CONFIGS: dict[str, Callable[..., transformers.PretrainedConfig]] = {
    "bert": lambda **kw: transformers.BertConfig(**_SMALL, **kw),
    "roberta": lambda **kw: transformers.RobertaConfig(max_position_embeddings=130, **_SMALL, **kw),
    "deberta-v2": lambda **kw: transformers.DebertaV2Config(
        relative_attention=True, pos_att_type=["p2c", "c2p"], pooler_hidden_size=32, **_SMALL, **kw
    ),
    "distilbert": lambda **kw: transformers.DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, **kw),
    "llama": lambda **kw: transformers.LlamaConfig(**_DECODER, **kw),
    "mistral": lambda **kw: transformers.MistralConfig(**_DECODER, **kw),
    "qwen2": lambda **kw: transformers.Qwen2Config(**_DECODER, **kw),
    "gpt2": lambda **kw: transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=128, **kw),
}


def save_tiny(arch: str, directory: Path, factory: Callable[..., transformers.PretrainedConfig] | None = None) -> Path:
    """A randomly initialised 2-layer sequence classifier of `arch` plus a tokenizer in `directory`."""
    tok = transformers.AutoTokenizer.from_pretrained(models.minilm_path())
    special = {"pad_token_id": tok.pad_token_id}
    if arch in DECODERS:
        tok.pad_token = None  # decoder tokenizers ship none; load_tokenizer must fall back to eos
        tok.eos_token = tok.sep_token
        special = {"pad_token_id": None, "bos_token_id": tok.cls_token_id, "eos_token_id": tok.sep_token_id}
    config = (factory or CONFIGS[arch])(vocab_size=len(tok), num_labels=2, **special)
    torch.manual_seed(0)
    transformers.AutoModelForSequenceClassification.from_config(config).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module", params=list(CONFIGS))
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, object, nn.Module]:
    """(architecture, tokenizer, LoRA model) loaded from a saved directory."""
    arch = request.param
    _, tok, model = load(save_tiny(arch, tmp_path_factory.mktemp(arch)))
    return arch, tok, model


def load(path: Path, **fields: object) -> tuple[RunConfig, object, nn.Module]:
    cfg = RunConfig(model=str(path), lora_dropout=0.0, **fields)
    tok = models.load_tokenizer(cfg)
    return cfg, tok, models.load_model(cfg, 2, tok, device=torch.device("cpu"))


def encoded(tok: object) -> Encoded:
    return Encoded([tok(t)["input_ids"] for t in TEXTS], LABELS.copy())


def test_module_map_names_four_lora_tensors_per_layer_and_the_head(loaded: tuple[str, object, nn.Module]) -> None:
    arch, tok, model = loaded
    if arch in DECODERS:
        assert tok.pad_token == tok.eos_token == "[SEP]"
    mm = modules.module_map(model)
    assert mm.n_layers == 2
    lora = [i for i in mm.infos if i.layer is not None]
    expected = [
        (f"layer{layer}.{which}.lora_{ab}", layer, f"{which}_{ab}")
        for layer in range(2)
        for which in ("query", "value")
        for ab in ("A", "B")
    ]
    assert [(i.name, i.layer, i.kind) for i in lora] == expected
    # lora_A is [r, hidden] on every architecture (GPT-2 included: q and v alone, not the fused qkv);
    # lora_B is [out, r] with out = hidden, or the key/value heads' width under grouped-query attention
    assert {i.n_params for i in lora if i.kind.endswith("_A")} == {4 * 32}
    assert {i.n_params for i in lora if i.kind == "query_B"} == {32 * 4}
    head = [i for i in mm.infos if i.kind == "cl"]
    assert head and all(i.name.startswith("cl.") for i in head)
    assert [i.name for i in mm.infos if i.kind == "we"] == ["we"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == sum(i.n_params for i in mm.infos if i.kind != "we")  # WE frozen by default


def test_gradients_collect_runs_on_every_architecture(loaded: tuple[str, object, nn.Module]) -> None:
    _, tok, model = loaded
    mm = modules.module_map(model)
    got = gradients.collect(model, mm, encoded(tok), tok.pad_token_id, batch_size=2, progress=False)
    assert set(got.dense) == set(mm.linears)
    for info in mm.infos:
        if info.kind != "we":
            assert got.dense[info.name].shape == (3, info.n_params)
            assert np.isfinite(got.dense[info.name]).all()
    assert got.losses.shape == (3,) and np.isfinite(got.losses).all()


def reference_gradients(model: nn.Module, mm: modules.ModuleMap, enc: Encoded) -> list[dict[str, np.ndarray]]:
    """One example at a time, no padding at all, plain autograd on every module's parameter."""
    model.eval()
    params = {name: getattr(mod, which) for name, (mod, which) in mm.linears.items()}
    out = []
    for b in range(len(enc)):
        ids = torch.tensor([enc.input_ids[b]])
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        loss = nn.functional.cross_entropy(logits, torch.tensor([int(enc.labels[b])]))
        grads = torch.autograd.grad(loss, list(params.values()))
        out.append({n: g.flatten().numpy() for n, g in zip(params, grads, strict=True)})
    return out


def test_llama_batched_gradients_equal_a_per_example_loop(tmp_path: Path) -> None:
    """Right padding of a decoder batch (pad = eos) changes nothing: float64, tight tolerance."""
    _, tok, model = load(save_tiny("llama", tmp_path), dtype="float64")
    with torch.no_grad():  # B away from zero so that every LoRA gradient is non-trivial
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    mm = modules.module_map(model)
    enc = encoded(tok)
    assert len({len(ids) for ids in enc.input_ids}) == 3  # different lengths: the batch is padded
    got = gradients.collect(model, mm, enc, tok.pad_token_id, batch_size=3, progress=False)
    ref = reference_gradients(model, mm, enc)
    for b in range(len(enc)):
        for name in mm.linears:
            np.testing.assert_allclose(got.dense[name][b], ref[b][name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_gpt2_fused_attention_is_split_without_changing_the_function(tmp_path: Path) -> None:
    path = save_tiny("gpt2", tmp_path)
    _, tok, model = load(path, dtype="float64")
    base = transformers.AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float64).eval()
    base.config.pad_token_id = tok.pad_token_id
    model.eval()
    attn = model.get_base_model().transformer.h[0].attn
    assert isinstance(attn.c_attn, modules.FusedQKV)
    # LoRA on the query and value projections only; the key projection keeps no adapter
    assert hasattr(attn.c_attn.q_proj, "lora_A") and hasattr(attn.c_attn.v_proj, "lora_A")
    assert not hasattr(attn.c_attn.k_proj, "lora_A")
    batch = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():  # LoRA B starts at zero: the adapted model equals the saved model
        want = base(**batch).logits
        got = model(**batch).logits
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_architecture_without_query_value_projections_is_refused(tmp_path: Path) -> None:
    def neox(**kw: object) -> transformers.PretrainedConfig:
        return transformers.GPTNeoXConfig(**_SMALL, **kw)

    path = save_tiny("gpt-neox", tmp_path, factory=neox)
    with pytest.raises(ConfigError, match="no query/value projection"):
        load(path)


def test_hub_id_fails_fast_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=r"some-org/some-model.*HF_HUB_OFFLINE=1"):
        models.load_tokenizer(RunConfig(model="some-org/some-model"))

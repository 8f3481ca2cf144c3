"""Modules: where LoRA sits in a model, and the name of every trainable tensor.

The query/value projections are found by name (BERT/RoBERTa ``query``/``value``, DeBERTa-v2
``query_proj``/``value_proj``, DistilBERT ``q_lin``/``v_lin``, Llama/Mistral/Qwen2
``q_proj``/``v_proj``). GPT-2 computes query, key and value with one fused ``c_attn`` projection;
`split_fused_qkv` rewrites it, before LoRA is attached, into three separate projections so that the
LoRA adapters sit on the query and the value projection alone, as for every other architecture.
`module_map` names every trainable tensor the way the rest of the package does
(``layer3.query.lora_A``, ``we``, ``cl.classifier.weight``) — see CONTRIBUTING.md. Loading models
is `layerinf.models`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from layerinf.config import ConfigError
from layerinf.scores import ModuleInfo

#: Attention projection names by architecture: (query names, value names).
_QUERY_NAMES = ("query", "q_proj", "query_proj", "q_lin")
_VALUE_NAMES = ("value", "v_proj", "value_proj", "v_lin")
_LAYER_RE = re.compile(r"\.(?:layer|layers|h|block|blocks)\.(\d+)\.")


class FusedQKV(nn.Module):
    """GPT-2's fused ``c_attn`` as three separate projections whose outputs are concatenated.

    GPT-2 computes ``[q | k | v] = x @ W + b`` with one `transformers.pytorch_utils.Conv1D`
    (W: [hidden, 3·hidden], in × out). LoRA on that fused tensor would adapt query, key and value
    together; calling it "query" or "value" would be false. Split into ``q_proj``, ``k_proj`` and
    ``v_proj`` (`nn.Linear`, weights copied from the column blocks of W), the layer computes the same
    function (up to float rounding: three products instead of one) and LoRA adapts W_q and W_v only —
    the paper's setting, with the same module names and types as every other architecture.
    """

    def __init__(self, fused: nn.Module) -> None:
        super().__init__()
        hidden, out = fused.weight.shape
        if out != 3 * hidden:
            raise ConfigError(f"fused attention projection of shape {tuple(fused.weight.shape)} is not [h, 3h]")
        for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
            # Built on the meta device so that no random initialisation consumes the seeded RNG.
            linear = nn.Linear(hidden, hidden, bias=fused.bias is not None, device="meta")
            cols = slice(i * hidden, (i + 1) * hidden)
            linear.weight = nn.Parameter(fused.weight.detach()[:, cols].t().clone(), requires_grad=False)
            if fused.bias is not None:
                linear.bias = nn.Parameter(fused.bias.detach()[cols].clone(), requires_grad=False)
            setattr(self, name, linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., hidden] -> [..., 3·hidden], laid out as q | k | v like the fused projection."""
        return torch.cat([self.q_proj(x), self.k_proj(x), self.v_proj(x)], dim=-1)


def split_fused_qkv(model: nn.Module) -> int:
    """Replace every GPT-2-style fused self-attention ``c_attn`` by a `FusedQKV`; returns how many.

    Only self-attention is rewritten (cross-attention's ``c_attn`` holds key and value only and has
    no query). Models without fused projections are left untouched.
    """
    from transformers.pytorch_utils import Conv1D

    done = 0
    for name, module in list(model.named_modules()):
        fused = getattr(module, "c_attn", None)
        if not isinstance(fused, Conv1D) or getattr(module, "is_cross_attention", False):
            continue
        if not _LAYER_RE.search("." + name + "."):
            continue
        module.c_attn = FusedQKV(fused)
        done += 1
    return done


def lora_targets(model: nn.Module) -> list[str]:
    """Names of the query and value projections of every layer, found by architecture."""
    suffixes = _QUERY_NAMES + _VALUE_NAMES
    found = sorted(
        {
            n.rsplit(".", 1)[-1]
            for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in suffixes and _LAYER_RE.search("." + n + ".")
        }
    )
    if not found:
        kinds = sorted({type(m).__name__ for m in model.modules()})[:12]
        raise ConfigError(
            f"no query/value projection ({', '.join(suffixes)}) found in {type(model).__name__}; "
            "supported: BERT/RoBERTa/DeBERTa/DistilBERT/Llama/Mistral/Qwen2-style attention, and GPT-2 "
            "after split_fused_qkv "
            f"(module types seen: {kinds})"
        )
    return found


def _is_head(param_name: str, base: nn.Module) -> bool:
    """True for classification-head tensors: everything outside the backbone, plus a BERT pooler."""
    name = param_name.removeprefix("base_model.model.")
    prefix = getattr(base, "base_model_prefix", "")
    if ".pooler." in f".{name}" and "lora_" not in name:
        return True
    return not name.startswith(prefix + ".") and "lora_" not in name


@dataclass(frozen=True)
class ModuleMap:
    """How every trainable tensor of a model maps to a module name.

    linears: module name -> (nn.Linear, which parameter: "weight" or "bias").
    embedding: the word-embedding layer (its weight is the ``we`` module).
    infos: ModuleInfo of every module in the canonical order (layers ascending; query_A, query_B,
        value_A, value_B within a layer; then ``we``; then the head tensors).
    n_layers: number of transformer layers.
    """

    linears: dict[str, tuple[nn.Linear, str]]
    embedding: nn.Embedding
    infos: tuple[ModuleInfo, ...]
    n_layers: int

    def select(self, names: Sequence[str]) -> ModuleMap:
        """This map restricted to the dense modules `names` (kept in canonical order).

        `gradients.collect` with the result computes only those modules' per-example gradients (pass
        ``with_we=False`` to skip the word embedding too), and its backward pass stops at the
        earliest selected layer: the cheap way to get the scores of a few layers.
        """
        if isinstance(names, str) or not names:
            raise ConfigError(f"names={names!r}: give a non-empty list of module names, e.g. ['layer3.query.lora_A']")
        unknown = [n for n in names if n not in self.linears]
        if unknown:
            hint = " (the word embedding is selected with gradients.collect(with_we=True))" if "we" in unknown else ""
            raise ConfigError(
                f"modules {unknown} are not dense modules of this model{hint}; known: {', '.join(self.linears)}"
            )
        keep = set(names)
        return ModuleMap(
            linears={k: v for k, v in self.linears.items() if k in keep},
            embedding=self.embedding,
            infos=tuple(i for i in self.infos if i.name in keep),
            n_layers=self.n_layers,
        )


def module_map(model: nn.Module) -> ModuleMap:
    """Name every LoRA tensor, the word embedding and every head tensor of a LoRA model."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    n_layers = int(getattr(base.config, "num_hidden_layers", 0) or getattr(base.config, "n_layer", 0))
    lora: list[tuple[int, int, ModuleInfo, nn.Linear]] = []
    head: list[tuple[ModuleInfo, nn.Linear, str]] = []
    order = {"query_A": 0, "query_B": 1, "value_A": 2, "value_B": 3}
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        parts = name.split(".")
        if len(parts) >= 3 and parts[-2] in ("lora_A", "lora_B"):
            match = _LAYER_RE.search("." + name + ".")
            proj = parts[-3]
            if match is None or proj not in _QUERY_NAMES + _VALUE_NAMES:
                raise ConfigError(f"LoRA module {name!r} is not on a query/value projection of a layer")
            layer = int(match.group(1))
            which = "query" if proj in _QUERY_NAMES else "value"
            kind = f"{which}_{parts[-2][-1]}"
            info = ModuleInfo(f"layer{layer}.{which}.{parts[-2]}", layer, kind, module.weight.numel())
            lora.append((layer, order[kind], info, module))
            continue
        full = name + ".weight"
        if _is_head(full, base):
            short = name.removeprefix("base_model.model.")
            for pname, param in module.named_parameters(recurse=False):
                head.append((ModuleInfo(f"cl.{short}.{pname}", None, "cl", param.numel()), module, pname))
    lora.sort(key=lambda t: (t[0], t[1]))
    embedding = model.get_input_embeddings()
    we = ModuleInfo("we", None, "we", embedding.weight.numel())
    linears: dict[str, tuple[nn.Linear, str]] = {info.name: (mod, "weight") for _, _, info, mod in lora}
    linears.update({info.name: (mod, pname) for info, mod, pname in head})
    infos = (*tuple(info for _, _, info, _ in lora), we, *tuple(info for info, _, _ in head))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    covered = {n for n, p in model.named_parameters() if any(p is getattr(m, w) for m, w in linears.values())}
    missing = trainable - covered - {n for n, p in model.named_parameters() if p is embedding.weight}
    if missing:
        raise ConfigError(f"trainable tensors outside nn.Linear are not supported: {sorted(missing)[:5]}")
    return ModuleMap(linears=linears, embedding=embedding, infos=infos, n_layers=n_layers)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every trainable tensor (what a checkpoint of a LoRA fine-tune is)."""
    return {n: p.detach().clone().cpu() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    unknown = set(state) - set(params)
    if unknown:
        raise ValueError(f"checkpoint has tensors the model does not: {sorted(unknown)[:5]}")
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))

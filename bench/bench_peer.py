"""Benchmark 4: a peer on the same job. Per-layer TracIn scores of one module of `minilm` (same
weights, same training and query snippets) with Captum's `TracInCP` and with ours.

Captum is run in its fastest exact mode: ``sample_wise_grads_per_batch=True`` (per-example gradients
of `nn.Linear` layers from hooks, like ours) with a ``reduction="sum"`` cross-entropy, batches of 32,
one checkpoint (the current weights; the load function leaves the model as it is and returns a
learning-rate factor of 1). Its scores are compared with ours entry by entry.

Two of ours: on the same job (`ModuleMap.select([module])`: `gradients.collect` computes that
module only, then `influence.pairwise`) — the headline ratio `peer_speedup`; and every module at once
(`gradients.collect` on the full map: all LoRA tensors, the head and the sparse word embedding, the
way a run computes them), of which the one module's scores are compared — 29 modules for the price
Captum charges for one.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import torch
from benchlib import Timings, fmt, nudge_lora, rt_examples, table, timed
from torch import nn

from layerinf import gradients
from layerinf.config import preset
from layerinf.encoding import batches, collate
from layerinf.influence import pairwise
from layerinf.models import load_model
from layerinf.modules import module_map

CPU = torch.device("cpu")
BATCH = 32


class _Logits(nn.Module):
    """Captum calls ``model(*batch[:-1])`` and expects a tensor: return the logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def _loader(enc, pad_id):
    """Captum's training data: batches of (input_ids, attention_mask, labels), padded per batch (a
    DataLoader with ``batch_size=None`` hands the ready batches over unchanged)."""
    from torch.utils.data import DataLoader

    ready = [tuple(collate(enc, idx, pad_id, CPU).values()) for idx in batches(len(enc), BATCH)]
    return DataLoader(ready, batch_size=None)


def _captum_scores(wrapper, layer: str, train_batches, query_batch) -> np.ndarray:
    from captum.influence import TracInCP  # checked in `run`

    tracin = TracInCP(
        wrapper,
        train_batches,
        checkpoints=["current-weights"],
        checkpoints_load_func=lambda model, path: 1.0,
        layers=[layer],
        loss_fn=nn.CrossEntropyLoss(reduction="sum"),
        sample_wise_grads_per_batch=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # integer token ids "cannot require gradients"
        return tracin.influence(query_batch).detach().numpy().T  # Captum: [m, n] -> ours: [n, m]


def _ours(model, mm, train, query, pad_id, name: str, with_we: bool) -> np.ndarray:
    g_train = gradients.collect(model, mm, train, pad_id, batch_size=BATCH, with_we=with_we, progress=False)
    g_query = gradients.collect(model, mm, query, pad_id, batch_size=BATCH, with_we=with_we, progress=False)
    return pairwise(g_train.dense[name], g_query.dense[name], "tracin")


def run(quick: bool, module: str | None = None, sizes: tuple[str, int, int, int] | None = None) -> dict:
    if importlib.util.find_spec("captum") is None:
        raise RuntimeError("captum is not installed: .venv/bin/pip install --no-deps -r requirements-bench.txt")
    model_name, n, m, repeats = sizes or (("tiny", 32, 8, 1) if quick else ("minilm", 128, 32, 3))
    cfg = preset("default", model=model_name, lora_dropout=0.0)
    tokenizer, enc = rt_examples(n + m, cfg)
    train, query = enc.subset(np.arange(n)), enc.subset(np.arange(n, n + m))
    model = load_model(cfg, 2, tokenizer, CPU)
    nudge_lora(model)
    model.eval()
    mm = module_map(model)
    pad_id = int(tokenizer.pad_token_id)
    # A middle layer: Captum hooks a layer through its input tensor, which must require gradients —
    # in layer 0 it does not (the word embedding is frozen), so Captum cannot take layer-0 LoRA A.
    module = module or f"layer{mm.n_layers // 2}.query.lora_A"
    one = mm.select([module])
    wrapper = _Logits(model).eval()
    layer = next(name for name, mod in wrapper.named_modules() if mod is mm.linears[module][0])
    # Captum hooks `nn.Linear` modules; the checkpoint's parameter must be the module's weight.
    assert mm.linears[module][1] == "weight"

    def jobs(train, query) -> dict:
        train_batches = _loader(train, pad_id)
        query_batch = tuple(collate(query, np.arange(len(query)), pad_id, CPU).values())
        return {
            "captum": lambda: _captum_scores(wrapper, layer, train_batches, query_batch),
            "ours_all_modules": lambda: _ours(model, mm, train, query, pad_id, module, True),
            "ours_one_module": lambda: _ours(model, one, train, query, pad_id, module, False),
        }

    for fn in jobs(train.subset(np.arange(min(n, 8))), query.subset(np.arange(min(m, 4)))).values():
        fn()  # warm-up (first-call costs), untimed
    t, scores = Timings(), {}
    for _ in range(repeats):  # interleaved; the first repetition's scores are compared
        for name, fn in jobs(train, query).items():
            seconds, out = timed(fn)
            t.add(name, seconds)
            scores.setdefault(name, out)
    scale = float(np.abs(scores["ours_one_module"]).max())
    rel = {
        name: float(np.abs(scores[name] - scores["ours_one_module"]).max()) / scale
        for name in ("captum", "ours_all_modules")
    }
    captum_s, ours_s, one_s = (t.median(k) for k in ("captum", "ours_all_modules", "ours_one_module"))
    # Captum gives one module's (or the sum of several modules') scores per call, each call repeating
    # the forward and backward passes; every dense module of minilm as a Captum layer:
    n_linear = len({id(mod) for mod, _ in mm.linears.values()})
    keys = {
        "peer_speedup": captum_s / one_s,  # the same job: one module's scores
        "peer_speedup_all_modules_at_once": captum_s / ours_s,  # ours computes every module meanwhile
        "peer_speedup_all_modules_estimated": captum_s * n_linear / ours_s,
        "peer_max_rel_diff": rel["captum"],
        "peer_seconds_captum": captum_s,
        "peer_seconds_ours": one_s,
        "peer_seconds_ours_all_modules": ours_s,
    }
    try:
        from importlib.metadata import version

        captum_version = version("captum")
    except Exception:  # pragma: no cover - reported, not fatal
        captum_version = "?"
    rows = [
        [f"Captum {captum_version} TracInCP", "1 module", captum_s, 1.0, rel["captum"]],
        ["ours, same job (`ModuleMap.select`)", "1 module", one_s, captum_s / one_s, 0.0],
        [
            "ours, every module at once",
            f"all {len(mm.infos)} modules incl. sparse WE",
            ours_s,
            captum_s / ours_s,
            rel["ours_all_modules"],
        ],
    ]
    md = "\n\n".join(
        [
            "#### A peer on the same job",
            f"TracIn scores of module `{module}` of `{model_name}` for {n:,} training × {m:,} query snippets "
            f"(median of {repeats} interleaved runs, one checkpoint = the current weights). `speed-up` = "
            "Captum's time / ours; `max rel diff` = largest absolute difference of the module's score matrix "
            "from ours on the same job, divided by its largest absolute score. Captum returns one module's "
            f"scores per call: all {n_linear} linear modules of this model would take {n_linear} calls "
            f"(≈ {fmt(captum_s * n_linear)} s; estimated, {n_linear} × the time above, "
            f"{captum_s * n_linear / ours_s:.0f}× ours with every module at once) and it has no sparse "
            "word-embedding gradient.",
            table(["implementation", "computes", "seconds", "speed-up", "max rel diff"], rows),
        ]
    )
    return {"keys": keys, "markdown": md, "raw": {"runs_s": t.seconds, "layer": layer, "n": n, "m": m}}

"""Batched multi-adapter retraining: K retrainings of one run trained in one pass.

Every retraining of a run starts from the same frozen base model and the same trainable
initialisation (LoRA matrices and head), with the same hyper-parameters and subsets of equal size;
only *which* examples were removed differs. Here the K mini-batches of one step go through the
model as one batch of K·B rows: the frozen layers (embeddings, attention, feed-forward, norms) see
one large matrix multiply, and every *trainable* linear map (the LoRA ``A``/``B`` and the head) is
replaced for the duration by a stacked ``[K, out, in]`` parameter applied block by block with a
batched matmul, so row block k only ever meets retraining k's tensors. The summed loss
``Σ_k mean-loss_k`` gives each stacked slice exactly its own retraining's gradient, and AdamW is
element-wise, so one optimizer over the stacked tensors is K independent optimizers.

What stays per retraining, as in `train.fit`: its subset, its data order (the run's seed and the
subset size, identical for all K, exactly as the sequential path draws it), its learning-rate
schedule, its checkpoint choice (lowest query loss) and its evaluation. What does not: dropout
masks come from one generator seeded once for the pack, so a retraining's masks depend on the pack
it was trained in (the cache key therefore names the whole pack). With dropout off the K results
equal K sequential `train.fit` calls up to floating-point rounding (tests/test_multitrain.py, in
float64).
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from layerinf.config import ConfigError, RunConfig
from layerinf.encoding import Encoded, batches, collate
from layerinf.train import EpochRecord, TrainResult, balanced_accuracy, cosine_with_warmup, loss_and_accuracy


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    prefix, _, attr = name.rpartition(".")
    return model.get_submodule(prefix), attr


class Stacked:
    """K copies of a model's trainable tensors as ``[K, ...]`` parameters, and the forward patches
    that apply copy k to row block k of every batch."""

    def __init__(self, model: nn.Module, states: Sequence[dict[str, torch.Tensor]]) -> None:
        self.model = model
        self.k = len(states)
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.linears: dict[nn.Linear, dict[str, str]] = {}
        for name in self.names:
            module, attr = _owner(model, name)
            if not isinstance(module, nn.Linear) or attr not in ("weight", "bias"):
                raise ConfigError(
                    f"batched retraining stacks only trainable nn.Linear tensors; {name!r} is a "
                    f"{type(module).__name__}.{attr} (use retrain_pack=1, the sequential path)"
                )
            self.linears.setdefault(module, {})[attr] = name
        ref = dict(model.named_parameters())
        self.params: dict[str, nn.Parameter] = {
            name: nn.Parameter(
                torch.stack([s[name] for s in states]).to(ref[name].device, ref[name].dtype).contiguous()
            )
            for name in self.names
        }

    def state(self, k: int) -> dict[str, torch.Tensor]:
        """Retraining k's trainable tensors, named as `modules.trainable_state` names them."""
        return {name: p.detach()[k].clone().cpu() for name, p in self.params.items()}

    def _forward(self, module: nn.Linear, names: dict[str, str]):
        k = self.k
        weight = self.params.get(names.get("weight", ""))
        bias = self.params.get(names.get("bias", ""))

        def forward(_self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
            lead = x.shape[:-1]
            xk = x.reshape(k, -1, x.shape[-1])  # row block k belongs to retraining k
            w = weight if weight is not None else module.weight.expand(k, *module.weight.shape)
            if bias is not None:
                y = torch.baddbmm(bias.unsqueeze(1), xk, w.transpose(1, 2))
            elif module.bias is not None:
                y = torch.baddbmm(module.bias.expand(k, 1, -1), xk, w.transpose(1, 2))
            else:
                y = torch.bmm(xk, w.transpose(1, 2))
            return y.reshape(*lead, y.shape[-1])

        return types.MethodType(forward, module)

    @contextmanager
    def patched(self) -> Iterator[None]:
        """The model computes with the stacked tensors inside the block, as itself outside it."""
        for module, names in self.linears.items():
            module.forward = self._forward(module, names)  # type: ignore[method-assign]
        try:
            yield
        finally:
            for module in self.linears:
                del module.forward


def collate_blocks(encs: Sequence[Encoded], index: Sequence[np.ndarray], pad_id: int, device: torch.device) -> dict:
    """One right-padded batch of ``K·B`` rows: block k holds `encs[k]`'s examples `index[k]`."""
    parts = [collate(e, i, pad_id, device) for e, i in zip(encs, index, strict=True)]
    width = max(p["input_ids"].shape[1] for p in parts)

    def pad(t: torch.Tensor, value: int) -> torch.Tensor:
        return nn.functional.pad(t, (0, width - t.shape[1]), value=value)

    return {
        "input_ids": torch.cat([pad(p["input_ids"], pad_id) for p in parts]),
        "attention_mask": torch.cat([pad(p["attention_mask"], 0) for p in parts]),
        "labels": torch.stack([p["labels"] for p in parts]),  # [K, B]
    }


@torch.no_grad()
def predict_blocks(model: nn.Module, k: int, enc: Encoded, pad_id: int, batch_size: int = 64) -> np.ndarray:
    """Logits ``[K, n, num_labels]`` of the K stacked models on `enc` (eval mode, float64)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for idx in batches(len(enc), max(1, batch_size // k)):
        batch = collate(enc, idx, pad_id, device)
        logits = model(input_ids=batch["input_ids"].repeat(k, 1), attention_mask=batch["attention_mask"].repeat(k, 1))
        out.append(logits.logits.double().reshape(k, len(idx), -1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out, axis=1)


def fit_pack(
    model: nn.Module,
    trains: Sequence[Encoded],
    query: Encoded,
    evaluation: Encoded,
    cfg: RunConfig,
    pad_id: int,
    *,
    init_state: dict[str, torch.Tensor],
    torch_seed: int,
    desc: str = "retrain pack",
    progress: bool = True,
) -> list[TrainResult]:
    """Train len(`trains`) retrainings from `init_state` at once; one `TrainResult` per subset.

    Every subset must have the same size (so every retraining has the same steps and data order).
    `torch_seed` seeds the generator the pack's dropout masks are drawn from. The model's own
    trainable tensors are left as they were.
    """
    sizes = {len(t) for t in trains}
    if len(sizes) != 1:
        raise ValueError(f"a retraining pack needs subsets of one size; got sizes {sorted(sizes)}")
    k, n = len(trains), sizes.pop()
    stacked = Stacked(model, [init_state] * k)
    torch.manual_seed(torch_seed)
    optimizer = torch.optim.AdamW(list(stacked.params.values()), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = max(1, round(cfg.warmup_frac * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_with_warmup(s, total, warmup))
    rng = np.random.default_rng(cfg.seed + 1)  # the data order of `train.fit` for a subset of size n
    device = next(model.parameters()).device
    best: list[tuple[float, int, dict[str, torch.Tensor]] | None] = [None] * k
    histories: list[list[EpochRecord]] = [[] for _ in range(k)]
    bar = tqdm(total=total, desc=f"{desc} (K={k})", disable=not progress, leave=False, unit="step")
    with stacked.patched():
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            order = rng.permutation(n)
            running = np.zeros(k)
            for idx in batches(n, cfg.batch_size, order):
                batch = collate_blocks(trains, [idx] * k, pad_id, device)
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                logits = logits.float().reshape(k, len(idx), -1)
                losses = nn.functional.cross_entropy(
                    logits.flatten(0, 1), batch["labels"].flatten(), reduction="none"
                ).reshape(k, len(idx))
                per_model = losses.mean(dim=1)
                optimizer.zero_grad(set_to_none=True)
                per_model.sum().backward()
                optimizer.step()
                scheduler.step()
                running += per_model.detach().cpu().double().numpy() * len(idx)
                bar.update(1)
            q_logits = predict_blocks(model, k, query, pad_id)
            e_logits = predict_blocks(model, k, evaluation, pad_id)
            for j in range(k):
                q_loss, q_acc = loss_and_accuracy(q_logits[j], query.labels)
                _, e_acc = loss_and_accuracy(e_logits[j], evaluation.labels)
                record = EpochRecord(
                    epoch,
                    float(running[j] / n),
                    q_loss,
                    q_acc,
                    e_acc,
                    balanced_accuracy(e_logits[j], evaluation.labels),
                )
                histories[j].append(record)
                if best[j] is None or q_loss < best[j][0]:  # type: ignore[index]
                    best[j] = (q_loss, epoch, stacked.state(j))
    bar.close()
    return [
        TrainResult(best_state=b[2], best_epoch=b[1], history=h)  # type: ignore[index]
        for b, h in zip(best, histories, strict=True)
    ]

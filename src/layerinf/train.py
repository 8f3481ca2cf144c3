"""Fine-tuning (and, with a subset of the training set, retraining) of a LoRA sequence classifier.

AdamW, cosine schedule with linear warm-up, seeded data order. After every epoch the model is
evaluated on the query set (checkpoint choice: lowest query loss, as in the paper) and on the
held-out evaluation set (reported, never used for choices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from layerinf.config import RunConfig
from layerinf.encoding import Encoded, batches, collate
from layerinf.modules import load_trainable_state, trainable_state


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    query_loss: float
    query_acc: float
    eval_acc: float
    eval_bacc: float  # balanced accuracy: mean over the classes present of the per-class recall


@dataclass
class TrainResult:
    """best_state: trainable tensors at the epoch with the lowest query loss (1-based `best_epoch`)."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    history: list[EpochRecord] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """Evaluation accuracy at the epoch with the lowest query loss (``acc_selected``: the primary
        number, chosen without looking at the evaluation set), its balanced accuracy
        (``bacc_selected``), the maximum over epochs of the evaluation accuracy (``acc_best``: the
        paper's report, which uses the evaluation set to choose the epoch) and the last epoch's."""
        accs = [h.eval_acc for h in self.history]
        chosen = self.history[self.best_epoch - 1]
        return {
            "acc_selected": float(chosen.eval_acc),
            "bacc_selected": float(chosen.eval_bacc),
            "acc_best": float(max(accs)),
            "acc_last": float(accs[-1]),
        }


@torch.no_grad()
def predict(model: nn.Module, enc: Encoded, pad_id: int, batch_size: int = 64) -> np.ndarray:
    """Logits [k, num_labels] in eval mode (float64 numpy)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for idx in batches(len(enc), batch_size):
        batch = collate(enc, idx, pad_id, device)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        out.append(logits.double().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out)


def loss_and_accuracy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-logp[np.arange(len(labels)), labels].mean())
    return loss, float((logits.argmax(axis=1) == labels).mean())


def balanced_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean over the classes present in `labels` of the fraction of their examples predicted right."""
    pred = logits.argmax(axis=1)
    return float(np.mean([(pred[labels == c] == c).mean() for c in np.unique(labels)]))


def cosine_with_warmup(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up to 1, then cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def fit(
    model: nn.Module,
    train: Encoded,
    query: Encoded,
    evaluation: Encoded,
    cfg: RunConfig,
    pad_id: int,
    *,
    init_state: dict[str, torch.Tensor] | None = None,
    torch_seed: int | None = None,
    desc: str = "fine-tune",
    progress: bool = True,
) -> TrainResult:
    """Train `model` in place on `train`; return the checkpoint with the lowest query loss.

    `init_state` (trainable tensors) is loaded first when given: retraining starts from exactly the
    initial weights and LoRA initialisation of the original fine-tuning. The data order depends only
    on `cfg.seed` and the size of `train`. `torch_seed` seeds torch's global generator first, so the
    dropout masks do not depend on what ran earlier in the process (without it they continue from
    the generator's current state).
    """
    if init_state is not None:
        load_trainable_state(model, init_state)
    if torch_seed is not None:
        torch.manual_seed(torch_seed)
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = max(1, round(cfg.warmup_frac * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_with_warmup(s, total, warmup))
    rng = np.random.default_rng(cfg.seed + 1)
    best: TrainResult | None = None
    history: list[EpochRecord] = []
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False, unit="step")
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = rng.permutation(len(train))
        running = 0.0
        for idx in batches(len(train), cfg.batch_size, order):
            batch = collate(train, idx, pad_id, device)
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            loss = nn.functional.cross_entropy(out.logits.float(), batch["labels"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += float(loss.detach()) * len(idx)
            bar.update(1)
        q_loss, q_acc = loss_and_accuracy(predict(model, query, pad_id), query.labels)
        e_logits = predict(model, evaluation, pad_id)
        _, e_acc = loss_and_accuracy(e_logits, evaluation.labels)
        e_bacc = balanced_accuracy(e_logits, evaluation.labels)
        record = EpochRecord(epoch, running / len(train), q_loss, q_acc, e_acc, e_bacc)
        history.append(record)
        bar.set_postfix(q_loss=f"{q_loss:.3f}", eval_acc=f"{e_acc:.3f}")
        if best is None or q_loss < best.history[-1].query_loss:
            best = TrainResult(best_state=trainable_state(model), best_epoch=epoch, history=[record])
    bar.close()
    assert best is not None
    return TrainResult(best_state=best.best_state, best_epoch=best.best_epoch, history=history)

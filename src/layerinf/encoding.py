"""Tokenised examples and dynamically padded batches.

Texts are tokenised once per split (truncated to `max_length`, no padding); batches are padded to
their own longest example, which is what makes CPU training affordable on short snippets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from layerinf.pools import Split


@dataclass(frozen=True)
class Encoded:
    """input_ids: one token-id list per example; labels: [k] int64 (the labels the loss uses)."""

    input_ids: list[list[int]]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)

    def subset(self, index: np.ndarray) -> Encoded:
        return Encoded([self.input_ids[i] for i in index], self.labels[index])


def encode(tokenizer, split: Split, max_length: int) -> Encoded:
    pairs = split.text_pairs
    out = tokenizer(list(split.texts), pairs if pairs is None else list(pairs), truncation=True, max_length=max_length)
    return Encoded(input_ids=[list(ids) for ids in out["input_ids"]], labels=np.asarray(split.labels, dtype=np.int64))


def collate(enc: Encoded, index: np.ndarray | list[int], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids, attention_mask [b, t] and labels [b]."""
    rows = [enc.input_ids[i] for i in index]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, row in enumerate(rows):
        ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[b, : len(row)] = 1
    labels = torch.as_tensor(enc.labels[np.asarray(index)], dtype=torch.long)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def batches(n: int, batch_size: int, order: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Consecutive index chunks of `order` (default 0..n-1)."""
    order = np.arange(n) if order is None else order
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]

"""Per-example, per-module loss gradients in batched passes, for every module at once.

One forward and one backward pass per batch give the gradient of every module for every example:
forward hooks keep each adapted `nn.Linear`'s input x and output; `torch.autograd.grad` of the
*summed* loss w.r.t. those outputs gives dL/dout per example (examples do not interact in eval mode),
and the per-example weight gradient is Σ_tokens dL/dout ⊗ x. The word-embedding gradient of an
example is kept sparse: the ids of its tokens and dL/d(embedding output) summed per token id —
materialising it densely would cost vocabulary × hidden floats per example.

Results are written chunk by chunk to an on-disk store, so a killed run resumes from the last
finished chunk: each module's rows go into its memory-mapped ``dense/<module>.npy`` [n, p]
(`layerinf.gradient_files`), the chunk's small arrays (losses, logits, word-embedding rows) into
``chunk_<k>.safetensors`` (atomic rename), written last. The chunk file records which examples it
holds and a sha256 over its identity, its own arrays and its rows of every module file; a chunk that
does not match (truncated, flipped bytes in either file, other chunking) is recomputed. The
`Gradients` a store hands back read the module files lazily (`StoredRows`), so no more than a block
of examples of one module is ever in RAM.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock
from safetensors.numpy import load_file  # noqa: F401  (tests read chunk files through it)
from torch import nn
from tqdm import tqdm

from layerinf.config import ConfigError
from layerinf.encoding import Encoded, batches, collate
from layerinf.gradient_store import _Assembly, _read_chunk, _write_chunk, chunk_label
from layerinf.gradient_types import Gradients, SparseRows  # noqa: F401  (re-exported)
from layerinf.modules import ModuleMap

CHUNK_EXAMPLES = 128


def _per_example_linear(x: torch.Tensor, go: torch.Tensor, which: str) -> torch.Tensor:
    """[b, numel] gradient of an nn.Linear's weight or bias for each example of the batch."""
    if which == "bias":
        return go.sum(1) if go.dim() == 3 else go
    if x.dim() == 2:
        return (go[:, :, None] * x[:, None, :]).flatten(1)
    return torch.einsum("bto,bti->boi", go, x).flatten(1)


def batch_gradients(model: nn.Module, mm: ModuleMap, batch: dict[str, torch.Tensor], *, with_we: bool = True) -> dict:
    """Gradients of every module for every example of one batch (model must be in eval mode).

    Returns a dict with "dense" (name -> [b, p] tensor), "we" (tokens, example, rows, counts) or
    None, "losses" [b] and "logits" [b, c].
    """
    captured: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    handles = []

    def keep(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        captured.setdefault(id(module), []).append((args[0], out))

    for module in {id(m): m for m, _ in mm.linears.values()}.values():
        handles.append(module.register_forward_hook(keep))
    emb_out: list[torch.Tensor] = []
    if with_we:

        def leaf(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
            # A fresh leaf that requires grad: dL/d(embedding output) even when the matrix is frozen.
            out = out.detach().requires_grad_(True)
            emb_out.append(out)
            return out

        handles.append(mm.embedding.register_forward_hook(leaf))
    try:
        with torch.enable_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            # float32 at least (bf16 logits), float64 kept for exactness checks
            losses = nn.functional.cross_entropy(
                logits.double() if logits.dtype == torch.float64 else logits.float(), batch["labels"], reduction="none"
            )
            outs = [o for calls in captured.values() for _, o in calls] + emb_out
            grads = torch.autograd.grad(losses.sum(), outs, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    grad_of = {id(o): g for o, g in zip(outs, grads, strict=True)}
    dense: dict[str, torch.Tensor] = {}
    for name, (module, which) in mm.linears.items():
        parts = []
        for x, o in captured.get(id(module), []):
            go = grad_of[id(o)]
            go = torch.zeros_like(o) if go is None else go
            if x.dtype == torch.bfloat16:  # accumulate per-example products in float32
                x, go = x.float(), go.float()
            parts.append(_per_example_linear(x, go, which))
        if not parts:
            raise RuntimeError(f"module {name} was not called in the forward pass")
        dense[name] = torch.stack(parts).sum(0) if len(parts) > 1 else parts[0]
    we = None
    if with_we:
        we = _sparse_embedding_rows(batch, grad_of[id(emb_out[0])], mm.embedding)
    return {"dense": dense, "we": we, "losses": losses.detach(), "logits": logits.detach()}


def _sparse_embedding_rows(batch: dict[str, torch.Tensor], go: torch.Tensor, emb: nn.Embedding) -> tuple:
    """Sum dL/d(embedding output) per (example, token id); padding positions and the padding row
    (whose gradient nn.Embedding defines as zero) are dropped."""
    vocab = emb.weight.shape[0]
    mask = batch["attention_mask"].bool()
    if emb.padding_idx is not None:
        mask = mask & (batch["input_ids"] != emb.padding_idx)
    example = torch.arange(mask.shape[0], device=mask.device)[:, None].expand_as(mask)[mask]
    keys = example * vocab + batch["input_ids"][mask]
    uniq, inverse, counts = torch.unique(keys, sorted=True, return_inverse=True, return_counts=True)
    rows = torch.zeros((len(uniq), go.shape[-1]), dtype=go.dtype, device=go.device)
    rows.index_add_(0, inverse, go[mask])
    return uniq // vocab, uniq % vocab, rows, counts


def _np(t: torch.Tensor) -> np.ndarray:
    return (t.float() if t.dtype == torch.bfloat16 else t).detach().cpu().numpy()


def _chunk_arrays(
    model: nn.Module, mm: ModuleMap, enc: Encoded, index: np.ndarray, pad_id: int, batch_size: int, with_we: bool
) -> dict[str, np.ndarray]:
    """The gradients of the chunk's examples, in the chunk's order.

    The examples are batched longest first (a stable sort by length), so that each batch is padded
    only to the length of its own longest example instead of a random batch's; the arrays are put
    back into chunk order at the end. Examples do not interact in eval mode, so only the amount of
    padding (that is, the work) changes, not the gradients.
    """
    device = next(model.parameters()).device
    lengths = np.fromiter((len(enc.input_ids[i]) for i in index), dtype=np.int64, count=len(index))
    order = np.argsort(-lengths, kind="stable")  # chunk positions, longest first
    acc: dict[str, list[np.ndarray]] = {}
    offset = 0
    for idx in batches(len(index), batch_size, index[order]):
        out = batch_gradients(model, mm, collate(enc, idx, pad_id, device), with_we=with_we)
        for name, g in out["dense"].items():
            acc.setdefault(f"dense/{name}", []).append(_np(g))
        acc.setdefault("losses", []).append(out["losses"].double().cpu().numpy())
        acc.setdefault("logits", []).append(out["logits"].double().cpu().numpy())
        if with_we:
            ex, tok, rows, counts = out["we"]
            acc.setdefault("we/example", []).append(order[ex.cpu().numpy() + offset])  # chunk positions
            acc.setdefault("we/tokens", []).append(tok.cpu().numpy())
            acc.setdefault("we/rows", []).append(_np(rows))
            acc.setdefault("we/counts", []).append(counts.cpu().numpy())
        offset += len(idx)
    arrays = {k: np.concatenate(v) for k, v in acc.items()}
    back = np.empty_like(order)
    back[order] = np.arange(len(order))  # sorted position of each chunk position
    for key in [k for k in arrays if k.startswith("dense/")] + ["losses", "logits"]:
        arrays[key] = arrays[key][back]
    if with_we:
        # Entries of one example come from one batch, already sorted by token id; a stable sort by
        # example restores the order an unsorted pass produces.
        by_example = np.argsort(arrays["we/example"], kind="stable")
        for key in ("we/example", "we/tokens", "we/rows", "we/counts"):
            arrays[key] = arrays[key][by_example]
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def collect(
    model: nn.Module,
    mm: ModuleMap,
    enc: Encoded,
    pad_id: int,
    *,
    batch_size: int = 32,
    with_we: bool = True,
    store: Path | None = None,
    identity: str = "",
    desc: str = "gradients",
    progress: bool = True,
) -> Gradients:
    """Per-example gradients of every module for all examples of `enc`, at the model's current weights.

    With `store`, each chunk of `CHUNK_EXAMPLES` examples is saved as ``chunk_<k>.safetensors``
    (written to a temporary name, then renamed) and reused if present and intact: an interrupted
    collection resumes where it stopped. A lock (``<store>.lock``) lets one process at a time work on
    a store; a second one waits, then reads the chunks the first wrote. `identity` (e.g. the stage's
    key and the split) is recorded in each chunk and covered by its checksum together with the chunk's
    position, so a chunk copied from another split, run or position is recomputed, never used.
    """
    n = len(enc)
    if n == 0:
        raise ValueError("gradients.collect: enc holds no examples")
    was_training = model.training
    model.eval()
    starts = list(range(0, n, CHUNK_EXAMPLES))
    lock, read_only = _lock(store)
    assembly = _Assembly(n, mm, with_we, store, not read_only)
    bar = tqdm(total=n, desc=desc, disable=not progress, leave=False, unit="ex")
    try:
        with lock:
            if store is not None and not read_only:
                store.mkdir(parents=True, exist_ok=True)
                for stale in store.glob("**/*.tmp*"):  # left by a killed process
                    stale.unlink(missing_ok=True)
            for k, start in enumerate(starts):
                index = np.arange(start, min(n, start + CHUNK_EXAMPLES))
                path = None if store is None else store / f"chunk_{k:05d}.safetensors"
                label = chunk_label(identity, k, start, len(index))
                arrays = _read_chunk(path, start, len(index), label, remove_bad=not read_only, n=n)
                if arrays is None and read_only:
                    raise ConfigError(
                        f"the artifact store is read-only and {path} is missing or damaged; "
                        "recompute it in a writable store"
                    )
                if arrays is None:
                    arrays = _chunk_arrays(model, mm, enc, index, pad_id, batch_size, with_we)
                    if path is not None:
                        _write_chunk(path, arrays, n, start, label)
                assembly.add(arrays)
                del arrays  # one chunk at a time is held, never all of them
                bar.update(len(index))
            if store is not None and with_we and not read_only:  # read-only: the rows stay in RAM
                assembly.write_we_rows()
    finally:
        bar.close()
        model.train(was_training)
    return assembly.result(enc)


def _lock(store: Path | None) -> tuple[Any, bool]:
    """(context manager, read_only). A store whose lock file cannot be created (a read-only copy of a
    finished run) is read without a lock: every chunk must then be present and intact."""
    if store is None:
        return nullcontext(), False
    lock = FileLock(str(store) + ".lock")
    if store.is_dir():
        try:
            lock.acquire()
        except OSError:  # read-only file system, no permission
            return nullcontext(), True
        lock.release()
    return lock, False

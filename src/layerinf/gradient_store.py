"""The on-disk store of `gradients.collect`: chunk files with checksums, module files, the lazy result.

A store directory holds, per chunk of examples, ``chunk_<k>.safetensors`` (losses, logits, the sparse
word-embedding arrays; metadata: first example, size, identity, the modules and a sha256), and per
module ``dense/<module>.npy`` [n, p] (`layerinf.gradient_files`), into which every chunk writes its
rows before its chunk file is renamed into place. The checksum covers the chunk's identity, its own
arrays and its rows of every module file, so damage to either is noticed and the chunk recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from layerinf.encoding import Encoded
from layerinf.gradient_files import StoredRows, read_rows, write_rows
from layerinf.gradient_types import Gradients, SparseRows
from layerinf.modules import ModuleMap


def chunk_label(identity: str, k: int, start: int, examples: int) -> str:
    """What a stored chunk is: its collection's identity, its index, first example and size."""
    return f"{identity}|chunk {k}|start {start}|examples {examples}"


def _digest(arrays: dict[str, np.ndarray], label: str = "") -> str:
    """sha256 of a chunk's identity `label` and its arrays: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256(label.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _dense_path(store: Path, key: str) -> Path:
    """The module file of a chunk array ``dense/<module>``."""
    return store / f"{key}.npy"


def _write_chunk(path: Path, arrays: dict[str, np.ndarray], n: int, start: int, label: str) -> None:
    """Rows of every module into its file (flushed), then the chunk file with the checksum over all."""
    path.unlink(missing_ok=True)  # the rows change first: the old chunk file must not vouch for them
    dense = sorted(k for k in arrays if k.startswith("dense/"))
    for key in dense:
        write_rows(_dense_path(path.parent, key), n, start, arrays[key])
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    meta = {
        "examples": str(len(arrays["losses"])),
        "start": str(start),
        "identity": label,
        "dense": json.dumps(dense),
        "sha256": _digest(arrays, label),
    }
    save_file({k: v for k, v in arrays.items() if k not in dense}, str(tmp), metadata=meta)
    os.replace(tmp, path)


def _read_chunk(
    path: Path | None, start: int, expected: int, label: str = "", remove_bad: bool = True, n: int | None = None
) -> dict[str, np.ndarray] | None:
    """The chunk's small arrays if the file holds examples start..start+expected-1, was written for
    the chunk identity `label`, and its arrays and its rows of every module file (n rows each) match
    the sha256 recorded over them; otherwise None (and the chunk file is removed)."""
    if path is None or not path.exists():
        return None
    try:
        with safe_open(str(path), framework="np") as fh:
            meta = fh.metadata() or {}
        arrays = load_file(str(path))
        full = dict(arrays)
        for key in json.loads(meta.get("dense", "[]")):
            rows = read_rows(_dense_path(path.parent, key), start, expected)
            if rows is None or (n is not None and StoredRows(_dense_path(path.parent, key)).shape[0] != n):
                raise ValueError(f"{key}: rows {start}.. missing")
            full[key] = rows
        ok = (
            len(arrays.get("losses", ())) == expected
            and meta.get("examples") == str(expected)
            and meta.get("start") == str(start)
            and meta.get("identity") == label
            and meta.get("sha256") == _digest(full, label)
        )
        del full
    except Exception:  # unreadable: truncated header, garbage, a missing or short module file, ...
        ok = False
    if not ok:
        if remove_bad:
            path.unlink(missing_ok=True)
        return None
    return arrays


class _Assembly:
    """The result of `collect`, filled chunk by chunk.

    Without a store, each chunk's dense rows are copied into arrays allocated once for all examples
    (peak memory: the result plus one chunk). With a store, the dense rows stay in their module files
    and the result reads them lazily; the word-embedding rows are gathered from the chunks into one
    ``we_rows.npy`` (`write_we_rows`), also read lazily. Losses, logits and the sparse index arrays
    are small and kept in RAM either way."""

    def __init__(
        self, n: int, mm: ModuleMap, with_we: bool, store: Path | None = None, we_on_disk: bool = False
    ) -> None:
        self.n, self.mm, self.with_we, self.pos, self.store = n, mm, with_we, 0, store
        self.we_on_disk = we_on_disk and store is not None
        self.dense: dict[str, np.ndarray] = {}
        self.small: dict[str, list[np.ndarray]] = {"losses": [], "logits": [], "counts": []}
        self.we_parts: list[SparseRows] = []
        self.we_rows: StoredRows | None = None

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        k = len(arrays["losses"])
        if self.store is None:
            for name in self.mm.linears:
                part = arrays[f"dense/{name}"]
                if name not in self.dense:
                    self.dense[name] = np.empty((self.n, *part.shape[1:]), dtype=part.dtype)
                self.dense[name][self.pos : self.pos + k] = part
        self.small["losses"].append(arrays["losses"])
        self.small["logits"].append(arrays["logits"])
        if self.with_we:
            offsets = np.concatenate([[0], np.cumsum(np.bincount(arrays["we/example"], minlength=k))])
            vocab = self.mm.embedding.weight.shape[0]
            rows = arrays["we/rows"][:0] if self.we_on_disk else arrays["we/rows"]  # on disk: `write_we_rows`
            self.we_parts.append(SparseRows(offsets.astype(np.int64), arrays["we/tokens"], rows, vocab))
            self.small["counts"].append(arrays["we/counts"])
        self.pos += k

    def write_we_rows(self) -> None:
        """``we_rows.npy``: the word-embedding rows of every chunk, in example order (rebuilt from the
        checksummed chunk files on every collection, so it is never stale)."""
        assert self.store is not None and self.we_on_disk
        total = sum(len(p.tokens) for p in self.we_parts)
        hidden = self.mm.embedding.weight.shape[1]
        final = self.store / "we_rows.npy"
        tmp = final.with_name(final.name + f".tmp{os.getpid()}")
        pos = 0
        for k in range(len(self.we_parts)):
            with safe_open(str(self.store / f"chunk_{k:05d}.safetensors"), framework="np") as fh:
                rows = fh.get_tensor("we/rows")
            if k == 0:
                created = np.lib.format.open_memmap(tmp, mode="w+", dtype=rows.dtype, shape=(int(total), int(hidden)))
                del created
            # A fresh mapping per chunk: written pages leave the resident set when it is closed.
            out = np.load(tmp, mmap_mode="r+", allow_pickle=False)
            out[pos : pos + len(rows)] = rows
            out.flush()
            del out
            pos += len(rows)
        assert pos == total
        os.replace(tmp, final)
        self.we_rows = StoredRows(final)

    def result(self, enc: Encoded) -> Gradients:
        if self.pos != self.n:
            raise RuntimeError(f"gradients: {self.pos} of {self.n} examples assembled")
        if self.store is None:
            dense = self.dense
        else:
            dense = {name: StoredRows(_dense_path(self.store, f"dense/{name}")) for name in self.mm.linears}
        we = None
        if self.with_we:
            we = SparseRows.concat(self.we_parts)
            if self.we_rows is not None:
                we = SparseRows(we.offsets, we.tokens, self.we_rows, we.vocab_size)
        return Gradients(
            dense=dense,
            we=we,
            token_counts=np.concatenate(self.small["counts"]) if self.with_we else None,
            infos=self.mm.infos,
            n_layers=self.mm.n_layers,
            losses=np.concatenate(self.small["losses"]),
            logits=np.concatenate(self.small["logits"]),
            labels=enc.labels.copy(),
        )

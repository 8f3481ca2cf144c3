"""Per-module scores: the central data structure, and the layer groups that slice it.

`ModuleScores.values[l, i, j]` is the influence of training example i on query example j measured
through module l alone (larger = more beneficial). Everything downstream (aggregation, metrics,
plots) starts from this array; nothing fuses aggregation into scoring, so per-layer scores always
exist. NumPy only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from layerinf.config import ConfigError, check_group

MODULE_TYPES: tuple[str, ...] = ("query_A", "query_B", "value_A", "value_B", "we", "cl")


@dataclass(frozen=True)
class ModuleInfo:
    """One trainable tensor of the fine-tuned model.

    name: e.g. ``layer3.query.lora_A``, ``we``, ``cl.classifier.weight``.
    layer: transformer layer index (0-based) for LoRA tensors; None for ``we`` and ``cl``.
    kind: one of `MODULE_TYPES`.
    n_params: number of entries of the tensor (for ``we``: vocabulary × hidden size).
    """

    name: str
    layer: int | None
    kind: str
    n_params: int


def layer_blocks(n_layers: int, n_blocks: int = 4) -> list[list[int]]:
    """Transformer layers split into `n_blocks` consecutive, as-equal-as-possible blocks."""
    if n_layers < 1:
        raise ConfigError(f"n_layers={n_layers} must be >= 1")
    return [list(map(int, b)) for b in np.array_split(np.arange(n_layers), n_blocks)]


def group_label(group: str, n_layers: int) -> str:
    """Human label of a layer group, e.g. ``block2`` -> ``layers 2–3`` (used in plots and tables)."""
    if group.startswith("block"):
        layers = layer_blocks(n_layers)[int(group[5:]) - 1]
        if not layers:
            return f"{group} (empty)"
        return f"layers {layers[0]}–{layers[-1]}" if len(layers) > 1 else f"layer {layers[0]}"
    return {"we": "WE", "cl": "CL", "all": "all"}.get(group, group)


def group_mask(modules: tuple[ModuleInfo, ...] | list[ModuleInfo], n_layers: int, group: str) -> np.ndarray:
    """Boolean [modules] mask of the modules that belong to `group`.

    Groups: ``we``, ``cl``, ``all`` (every module), ``block1``..``block4`` (LoRA tensors of the
    layers in that block), ``layer{i}``, ``type:{module type}``.
    """
    check_group(group)
    if group == "all":
        return np.ones(len(modules), dtype=bool)
    if group in ("we", "cl"):
        return np.array([m.kind == group for m in modules], dtype=bool)
    if group.startswith("type:"):
        return np.array([m.kind == group[5:] for m in modules], dtype=bool)
    if group.startswith("block"):
        layers = set(layer_blocks(n_layers)[int(group[5:]) - 1])
    else:
        index = int(group[5:])
        if index >= n_layers:
            raise ConfigError(f"group={group!r} names a layer the model does not have (layers 0..{n_layers - 1})")
        layers = {index}
    return np.array([m.layer is not None and m.layer in layers for m in modules], dtype=bool)


@dataclass(frozen=True)
class ModuleScores:
    """Influence of every training example on every query example, per module.

    values: float array [modules, n_train, n_query]; larger = more beneficial.
    modules: metadata of each row of `values`.
    n_layers: number of transformer layers of the model (to form the layer blocks).
    method: the influence method that produced the values.
    train_ids, query_ids: example ids of the axes 1 and 2.
    """

    values: np.ndarray
    modules: tuple[ModuleInfo, ...]
    n_layers: int
    method: str
    train_ids: np.ndarray
    query_ids: np.ndarray

    def __post_init__(self) -> None:
        if self.values.ndim != 3:
            raise ValueError(f"values must be [modules, n_train, n_query], got shape {self.values.shape}")
        if self.values.shape != (len(self.modules), len(self.train_ids), len(self.query_ids)):
            raise ValueError(
                f"values shape {self.values.shape} does not match {len(self.modules)} modules, "
                f"{len(self.train_ids)} training and {len(self.query_ids)} query ids"
            )

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.modules]

    def mask(self, group: str) -> np.ndarray:
        return group_mask(self.modules, self.n_layers, group)

    def group(self, group: str) -> ModuleScores:
        """The modules of one layer group (may be empty, e.g. ``we`` under a LoRA-only method)."""
        keep = self.mask(group)
        return ModuleScores(
            values=self.values[keep],
            modules=tuple(m for m, k in zip(self.modules, keep, strict=True) if k),
            n_layers=self.n_layers,
            method=self.method,
            train_ids=self.train_ids,
            query_ids=self.query_ids,
        )

    def total(self) -> np.ndarray:
        """[n_train, n_query]: the sum over modules (for TracIn: the whole-model score)."""
        return self.values.sum(axis=0)

    # -- storage: plain .npz + JSON, never pickle --------------------------------------------------
    def save(self, path: Path) -> None:
        path = Path(path)
        meta = {"method": self.method, "n_layers": self.n_layers, "modules": [asdict(m) for m in self.modules]}
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            values=self.values,
            train_ids=self.train_ids,
            query_ids=self.query_ids,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        )
        tmp.replace(path)

    def save_safetensors(self, path: Path) -> None:
        """Write the scores for other tools: a safetensors file (no pickle, readable from any language
        with a safetensors reader) holding one float tensor per module, named by the module
        (``layer3.query.lora_A``, ``we``, ``cl.classifier.weight``), each [n_train, n_query]; its
        string metadata holds ``method``, ``n_layers``, ``modules`` (JSON list of name, layer, kind,
        n_params, in order) and ``train_ids`` / ``query_ids`` (JSON lists of the example ids)."""
        from safetensors.numpy import save_file

        meta = {
            "format": "layerinf.ModuleScores/1",
            "method": self.method,
            "n_layers": str(self.n_layers),
            "modules": json.dumps([asdict(m) for m in self.modules]),
            "train_ids": json.dumps([str(i) for i in self.train_ids]),
            "query_ids": json.dumps([str(i) for i in self.query_ids]),
        }
        tensors = {m.name: np.ascontiguousarray(self.values[i]) for i, m in enumerate(self.modules)}
        save_file(tensors, str(path), metadata=meta)

    @classmethod
    def load_safetensors(cls, path: Path) -> ModuleScores:
        """Read what `save_safetensors` wrote."""
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata() or {}
            if meta.get("format") != "layerinf.ModuleScores/1":
                raise ConfigError(f"{path} is not a layerinf ModuleScores safetensors file")
            modules = tuple(ModuleInfo(**m) for m in json.loads(meta["modules"]))
            values = np.stack([fh.get_tensor(m.name) for m in modules]) if modules else np.zeros((0, 0, 0))
        return cls(
            values=values,
            modules=modules,
            n_layers=int(meta["n_layers"]),
            method=meta["method"],
            train_ids=np.asarray(json.loads(meta["train_ids"]), dtype=str),
            query_ids=np.asarray(json.loads(meta["query_ids"]), dtype=str),
        )

    @classmethod
    def load(cls, path: Path) -> ModuleScores:
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes().decode())
            return cls(
                values=data["values"],
                modules=tuple(ModuleInfo(**m) for m in meta["modules"]),
                n_layers=int(meta["n_layers"]),
                method=str(meta["method"]),
                train_ids=data["train_ids"],
                query_ids=data["query_ids"],
            )

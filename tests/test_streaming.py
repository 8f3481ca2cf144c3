"""Gradients streamed from memory-mapped files give the in-RAM results: scores of every method,
cancellation sums, and a store that resumes after a partial write and notices a damaged file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from layerinf import gradient_files, gradient_store, gradients, influence, methods, models, modules
from layerinf.config import RunConfig
from layerinf.encoding import Encoded
from layerinf.gradient_files import StoredRows, column_sums
from layerinf.gradients import Gradients, SparseRows
from layerinf.scores import ModuleInfo
from layerinf.tables import cancellation_table

rng = np.random.default_rng(7)
_REAL_CHUNK_ARRAYS = gradients._chunk_arrays


def in_ram(n: int, dtype: type = np.float32, vocab: int = 40, d: int = 6) -> Gradients:
    infos = (
        ModuleInfo("layer0.query.lora_A", 0, "query_A", 12),
        ModuleInfo("layer1.value.lora_B", 1, "value_B", 9),
        ModuleInfo("we", None, "we", vocab * d),
        ModuleInfo("cl.dense.weight", None, "cl", 700),
        ModuleInfo("cl.out_proj.bias", None, "cl", 2),
    )
    dense = {i.name: rng.normal(size=(n, i.n_params)).astype(dtype) for i in infos if i.kind != "we"}
    offsets, tokens, rows, counts = [0], [], [], []
    for _ in range(n):
        toks = np.sort(rng.choice(vocab, size=rng.integers(1, 12), replace=False))
        tokens.append(toks)
        rows.append(rng.normal(size=(len(toks), d)).astype(dtype))
        counts.append(rng.integers(1, 4, size=len(toks)))
        offsets.append(offsets[-1] + len(toks))
    we = SparseRows(np.array(offsets), np.concatenate(tokens), np.concatenate(rows), vocab)
    return Gradients(dense, we, np.concatenate(counts), infos, 2, np.zeros(n), np.zeros((n, 2)), np.zeros(n, int))


def stored(g: Gradients, where: Path) -> Gradients:
    """The same gradients, every dense module and the embedding rows read from .npy files."""
    where.mkdir(parents=True, exist_ok=True)
    dense = {}
    for name, a in g.dense.items():
        np.save(where / f"{name}.npy", a)
        dense[name] = StoredRows(where / f"{name}.npy")
    np.save(where / "we_rows.npy", g.we.rows)
    we = SparseRows(g.we.offsets, g.we.tokens, StoredRows(where / "we_rows.npy"), g.we.vocab_size)
    return Gradients(dense, we, g.token_counts, g.infos, g.n_layers, g.losses, g.logits, g.labels)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few examples, so that every streamed path really walks several blocks."""
    monkeypatch.setattr(gradient_files, "BLOCK_BYTES", 2048)
    monkeypatch.setattr(influence, "CONVERT_BLOCK_BYTES", 4096)


@pytest.mark.parametrize("shape", [(1, 3), (7, 1), (300, 2), (97, 700)])
def test_column_sums_are_bitwise_the_in_ram_reduction(shape, small_blocks, tmp_path):
    g = rng.normal(size=shape).astype(np.float32) * 10.0 ** rng.integers(-3, 3, size=shape)
    np.save(tmp_path / "g.npy", g)
    want = (np.abs(g).sum(0, dtype=np.float64), np.abs(g.sum(0, dtype=np.float64)))
    for source in (g, StoredRows(tmp_path / "g.npy")):
        got = column_sums(source)
        assert got[0].tobytes() == want[0].tobytes() and got[1].tobytes() == want[1].tobytes()


@pytest.mark.parametrize("method", methods.names())
def test_streamed_scores_equal_in_ram_scores(method, small_blocks, tmp_path):
    """Dense modules bitwise (same arithmetic, read by slabs) except DataInf, whose Gram matrix is
    formed a block of rows at a time; those and the word embedding (row products per block of
    examples) to float rounding."""
    train, query = in_ram(37), in_ram(9)
    want = influence.compute_scores(train, query, method, progress=False, out_dtype=np.float64)
    got = influence.compute_scores(
        stored(train, tmp_path / "t"), stored(query, tmp_path / "q"), method, progress=False, out_dtype=np.float64
    )
    assert got.modules == want.modules
    for row, info in enumerate(want.modules):
        if info.kind == "we" or method == "datainf":
            np.testing.assert_allclose(got.values[row], want.values[row], rtol=1e-12, atol=1e-12)
        else:
            assert got.values[row].tobytes() == want.values[row].tobytes(), info.name


def test_streamed_module_scores_sum_to_whole_model(small_blocks, tmp_path):
    train, query = in_ram(30, np.float64), in_ram(6, np.float64)
    s = influence.compute_scores(stored(train, tmp_path / "t"), stored(query, tmp_path / "q"), "tracin", progress=False)
    dense_we = [np.stack([g.we.dense(b).ravel() for b in range(len(g))]) for g in (train, query)]
    whole = [
        np.concatenate([*(g.dense[n] for n in g.dense), w], axis=1)
        for g, w in zip((train, query), dense_we, strict=True)
    ]
    np.testing.assert_allclose(s.values.sum(0), whole[0] @ whole[1].T, rtol=1e-5, atol=1e-4)


def test_stored_gram_never_whole_but_equal(small_blocks, tmp_path, monkeypatch):
    from layerinf import gram

    monkeypatch.setattr(gram, "GRAM_BLOCK_BYTES", 8 * 37 * 5)  # 5 rows of K at a time
    train = in_ram(37)
    st = stored(train, tmp_path)
    for name, a in train.dense.items():
        prods = influence.products(st.dense[name], st.dense[name][:3], with_norms=True, with_gram=True)
        assert isinstance(prods.gram, gram.DenseGram) and len(prods.gram.row_blocks()) == 8
        want = influence.products(a, a[:3], with_norms=True, with_gram=True).gram
        np.testing.assert_allclose(np.asarray(prods.gram), want, rtol=1e-12, atol=1e-12)
        y = rng.normal(size=(37, 4))
        np.testing.assert_allclose(prods.gram @ y, want @ y, rtol=1e-10, atol=1e-10)
    sparse = gram.SparseGram(st.we)
    assert len(sparse.row_blocks()) > 1
    whole = influence.sparse_inner(train.we, train.we)
    np.testing.assert_allclose(np.asarray(sparse), whole, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(sparse.diagonal(), np.diag(np.asarray(sparse)))


def test_streamed_cancellation_table_is_identical(small_blocks, tmp_path):
    train = in_ram(41)
    groups = ["all", "we", "cl", "block1", "layer1"]
    pd.testing.assert_frame_equal(
        cancellation_table(stored(train, tmp_path), groups), cancellation_table(train, groups), check_exact=True
    )


# -- the store of `gradients.collect` --------------------------------------------------------------


@pytest.fixture(scope="module")
def setup():
    cfg = RunConfig(model="tiny", dtype="float64", lora_dropout=0.0)
    tok = models.load_tokenizer(cfg)
    model = models.load_model(cfg, 2, tok)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    texts = ["a gripping film", "flat flat flat jokes", "not good", "nobody asked", "good", "i cried", "dull", "ok"]
    enc = Encoded([tok(t)["input_ids"] for t in texts], np.array([1, 0, 0, 0, 1, 1, 0, 1]))
    return cfg, tok, model, modules.module_map(model), enc


def _collect(setup, store: Path, monkeypatch, calls: list | None = None) -> Gradients:
    _, tok, model, mm, enc = setup
    monkeypatch.setattr(gradients, "CHUNK_EXAMPLES", 3)
    if calls is not None:
        real = _REAL_CHUNK_ARRAYS
        monkeypatch.setattr(gradients, "_chunk_arrays", lambda *a, **k: calls.append(int(a[3][0])) or real(*a, **k))
    return gradients.collect(model, mm, enc, tok.pad_token_id, batch_size=2, store=store, progress=False)


def _assert_same(a: Gradients, b: Gradients) -> None:
    for name in a.dense:
        np.testing.assert_array_equal(np.asarray(a.dense[name]), np.asarray(b.dense[name]))
    np.testing.assert_array_equal(np.asarray(a.we.rows), np.asarray(b.we.rows))
    np.testing.assert_array_equal(a.we.offsets, b.we.offsets)
    np.testing.assert_array_equal(a.losses, b.losses)


def test_store_is_memory_mapped_and_equals_in_ram(setup, tmp_path, monkeypatch):
    _, tok, model, mm, enc = setup
    got = _collect(setup, tmp_path, monkeypatch)
    assert all(isinstance(a, StoredRows) for a in got.dense.values()) and isinstance(got.we.rows, StoredRows)
    assert sorted(p.name for p in (tmp_path / "dense").iterdir()) == sorted(f"{n}.npy" for n in mm.linears)
    _assert_same(got, gradients.collect(model, mm, enc, tok.pad_token_id, batch_size=2, progress=False))


def test_store_resumes_after_a_partial_write(setup, tmp_path, monkeypatch):
    """Killed after chunk 1's module rows were written but before its chunk file: chunk 1 and the
    rest are computed on the next call, chunk 0 is read."""
    reference = _collect(setup, tmp_path / "ref", monkeypatch)
    real = gradient_store.save_file

    def killed(arrays, path, metadata):
        if metadata["start"] == "3":
            raise KeyboardInterrupt
        real(arrays, path, metadata=metadata)

    monkeypatch.setattr(gradient_store, "save_file", killed)
    with pytest.raises(KeyboardInterrupt):
        _collect(setup, tmp_path / "s", monkeypatch)
    monkeypatch.setattr(gradient_store, "save_file", real)
    calls: list = []
    _assert_same(_collect(setup, tmp_path / "s", monkeypatch, calls), reference)
    assert calls == [3, 6]


def test_damaged_memory_mapped_file_is_detected_and_recomputed(setup, tmp_path, monkeypatch):
    reference = _collect(setup, tmp_path, monkeypatch)
    name = next(iter(reference.dense))
    path = tmp_path / "dense" / f"{name}.npy"
    mapped = np.load(path, mmap_mode="r+")
    mapped[4, 0] += 1.0  # example 4: chunk 1 (examples 3..5)
    mapped.flush()
    del mapped
    calls: list = []
    _assert_same(_collect(setup, tmp_path, monkeypatch, calls), reference)
    assert calls == [3]
    path.write_bytes(path.read_bytes()[:100])  # a truncated module file: every chunk is recomputed
    calls.clear()
    _assert_same(_collect(setup, tmp_path, monkeypatch, calls), reference)
    assert calls == [0, 3, 6]


def test_stored_rows_read_piecewise_equal_the_array(tmp_path, monkeypatch):
    """Column slabs of many rows are read through one mapping per `ROWS_PER_MAP` rows."""
    monkeypatch.setattr(gradient_files, "ROWS_PER_MAP", 7)
    a = rng.normal(size=(100, 13)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    s = StoredRows(tmp_path / "a.npy")
    for key in [(slice(None), slice(3, 9)), (slice(10, 90), slice(None)), slice(5, 60), ..., (slice(0, 100, 2), 4)]:
        np.testing.assert_array_equal(s[key], a[key])
    np.testing.assert_array_equal(np.asarray(s), a)

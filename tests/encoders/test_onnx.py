"""The encoder on onnxruntime (KGRAG_EMBEDDING_BACKEND=onnx / onnx-int8): real export, real vectors.

One export per module (~10 s on a shared CPU) into a temporary home; every test reuses it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kgrag.indexes.corpus import Passage, load_corpus
from kgrag.indexes.edge_vectors import edge_vectors_dir
from kgrag.encoders.embeddings import SentenceTransformerEmbedder, embedder_from_settings, embedding_identity
from kgrag.errors import ArtefactError, IndexMismatchError, SettingsError
from kgrag.encoders.onnx import INT8_FILE, META_FILE, OnnxEncoder, export_dir
from kgrag.settings import Settings, load_settings
from kgrag.indexes.text_index import TextIndex

QUERIES = ["Is HLA-B a risk locus for psoriasis?", "What causes COVID-19?", "Do statins prevent strokes in the elderly?"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-home")


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(threads=1)


@pytest.fixture(scope="module")
def int8(home: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(backend="onnx-int8", home=home, threads=1)


@pytest.fixture(scope="module")
def fp32(home: Path, int8: SentenceTransformerEmbedder) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(backend="onnx", home=home, threads=1)  # after int8: the same export


@pytest.fixture(scope="module")
def corpus(fixtures_dir: Path) -> list[Passage]:
    return load_corpus(load_settings(sources_dir=fixtures_dir / "text")).passages


@pytest.fixture(scope="module")
def texts(corpus: list[Passage]) -> list[str]:
    return [p.text for p in corpus] + QUERIES + ["psoriasis", "HLA-B", "x"]


@pytest.fixture()
def settings(tmp_path: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in ("KGRAG_HOME", "KGRAG_SOURCES_DIR", "KGRAG_TEXT_INDEX_DIR", "KGRAG_EMBEDDING_MODEL",
                "KGRAG_EMBEDDING_BACKEND", "KGRAG_EMBEDDING_DEVICE"):
        monkeypatch.delenv(key, raising=False)
    return load_settings(home=tmp_path / "home", sources_dir=fixtures_dir / "text")


def test_fp32_onnx_gives_torchs_vectors_and_shares_its_name(torch_embedder, fp32, texts: list[str]) -> None:
    expected = torch_embedder.encode(texts, persist=False)
    vectors = fp32.encode(texts, persist=False)
    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), 384)
    assert np.abs(vectors - expected).max() < 1e-5
    assert fp32.model_name == torch_embedder.model_name == "all-MiniLM-L6-v2"


def test_int8_vectors_are_close_to_torchs_and_named_apart(torch_embedder, int8, texts: list[str],
                                                         corpus: list[Passage]) -> None:
    expected = torch_embedder.encode(texts, persist=False)
    vectors = int8.encode(texts, persist=False)
    cosine = np.einsum("ij,ij->i", vectors, expected)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert cosine.mean() > 0.99 and cosine.min() > 0.97, cosine
    queries, passages = slice(len(corpus), len(corpus) + 3), slice(0, len(corpus))
    nearest = [corpus[i].pmid for i in (vectors[queries] @ vectors[passages].T).argmax(axis=1)]
    assert nearest == [corpus[i].pmid for i in (expected[queries] @ expected[passages].T).argmax(axis=1)]
    assert int8.model_name == "all-MiniLM-L6-v2@onnx-int8" == embedding_identity("all-MiniLM-L6-v2", "onnx-int8")


def test_the_export_is_made_once_and_reused(home: Path, int8, fp32) -> None:
    directory = export_dir(home, "all-MiniLM-L6-v2")
    meta = json.loads((directory / META_FILE).read_text())
    assert meta["optimized"] is True and meta["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert {f["name"] for f in meta["files"]} == {"model.onnx", "model-int8.onnx"}
    again = OnnxEncoder.open("all-MiniLM-L6-v2", home=home, quantised=True, threads=1)
    assert again.export.exported_at == meta["exported_at"]  # not exported again
    assert sorted(p.name for p in directory.parent.iterdir()) == ["all-MiniLM-L6-v2"]  # no staging left behind


def test_threads_reach_onnxruntime(int8) -> None:
    assert int8._onnx._session.get_session_options().intra_op_num_threads == 1


def test_a_damaged_export_is_a_clear_error(home: Path, int8, tmp_path: Path) -> None:
    copy = export_dir(tmp_path, "all-MiniLM-L6-v2")
    shutil.copytree(export_dir(home, "all-MiniLM-L6-v2"), copy)
    with (copy / INT8_FILE).open("r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(ArtefactError, match=rf"onnx export at {copy} is damaged: model-int8.onnx 1000 bytes.*rm -r"):
        OnnxEncoder.open("all-MiniLM-L6-v2", home=tmp_path, quantised=True)
    (copy / META_FILE).write_text("{")
    with pytest.raises(ArtefactError, match=r"export.json unreadable.*KGRAG_EMBEDDING_BACKEND=torch"):
        OnnxEncoder.open("all-MiniLM-L6-v2", home=tmp_path, quantised=False)


def test_caches_are_kept_apart_by_the_vectors_name(home: Path, tmp_path: Path, texts: list[str]) -> None:
    cache = tmp_path / "embeddings"
    SentenceTransformerEmbedder(cache_dir=cache, threads=1).encode(texts)
    shared = SentenceTransformerEmbedder(cache_dir=cache, backend="onnx", home=home, threads=1)
    shared.encode(texts)
    assert shared.encoded_count == 0  # fp32 onnx reads torch's vectors: they are the same
    apart = SentenceTransformerEmbedder(cache_dir=cache, backend="onnx-int8", home=home, threads=1)
    apart.encode(texts)
    assert apart.encoded_count == len(set(texts))  # int8 never reads fp32 vectors
    assert sorted(p.name for p in cache.iterdir()) == ["all-MiniLM-L6-v2", "all-MiniLM-L6-v2_onnx-int8"]


def test_an_index_built_with_int8_is_refused_by_another_backend(settings: Settings, int8, torch_embedder,
                                                               fixtures_dir: Path) -> None:
    passages: list[Passage] = load_corpus(settings).passages
    TextIndex.build(passages, settings, embedder=int8, progress=False)
    assert json.loads((settings.text_index_dir / "manifest.json").read_text())["embedding_model"] == \
        "all-MiniLM-L6-v2@onnx-int8"
    with pytest.raises(IndexMismatchError, match=r"'all-MiniLM-L6-v2@onnx-int8'.*'all-MiniLM-L6-v2' is in use.*"
                                                 r"KGRAG_EMBEDDING_BACKEND=onnx-int8"):
        TextIndex.load(settings, embedder=torch_embedder)
    with pytest.raises(IndexMismatchError, match="onnx-int8"):
        TextIndex.load(settings)  # the settings' backend (torch), checked before any model is loaded
    int8_settings = load_settings(home=settings.home, sources_dir=settings.sources_dir, embedding_backend="onnx-int8")
    [hits, *_] = TextIndex.load(int8_settings, embedder=int8).search(QUERIES, k=1, fusion="dense")
    assert hits[0].passage.pmid == "1002"
    assert edge_vectors_dir(int8_settings).name == "all-MiniLM-L6-v2_onnx-int8"
    assert edge_vectors_dir(settings).name == "all-MiniLM-L6-v2"


def test_the_backend_setting_is_checked(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGRAG_EMBEDDING_BACKEND", "fp16")
    with pytest.raises(SettingsError, match=r"KGRAG_EMBEDDING_BACKEND.*'torch', 'onnx' or 'onnx-int8'.*fp16"):
        load_settings(home=settings.home)
    monkeypatch.delenv("KGRAG_EMBEDDING_BACKEND")
    with pytest.raises(SettingsError, match=r"runs on the CPU.*KGRAG_EMBEDDING_BACKEND=torch"):
        load_settings(home=settings.home, embedding_backend="onnx", embedding_device="cuda")
    chosen = load_settings(home=settings.home, embedding_backend="onnx-int8", embedding_threads=1)
    assert (chosen.embedding_backend, embedding_identity(chosen.embedding_model, chosen.embedding_backend)) == \
        ("onnx-int8", "all-MiniLM-L6-v2@onnx-int8")


def test_embedder_from_settings_exports_under_the_home(settings: Settings, home: Path, int8) -> None:
    shutil.copytree(export_dir(home, "all-MiniLM-L6-v2"), export_dir(settings.home, "all-MiniLM-L6-v2"))
    embedder = embedder_from_settings(load_settings(home=settings.home, embedding_backend="onnx-int8",
                                                    embedding_threads=1))
    assert embedder.model_name == "all-MiniLM-L6-v2@onnx-int8" and embedder.threads == 1
    assert embedder._onnx.file == export_dir(settings.home, "all-MiniLM-L6-v2") / INT8_FILE

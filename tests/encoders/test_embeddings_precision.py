"""The torch encoder in bfloat16 (KGRAG_EMBEDDING_PRECISION): its vectors, its name, and where auto picks it."""

from __future__ import annotations

import numpy as np
import pytest

import kgrag.encoders.embeddings
from kgrag.indexes.corpus import Passage
from kgrag.encoders.embeddings import SentenceTransformerEmbedder, resolve_precision, settings_for_identity, settings_identity
from kgrag.errors import BackendUnavailableError, IndexMismatchError

TEXTS = [
    "Disease psoriasis associates Gene HLA-B and Provenance of this association is GWAS.",
    "Disease breast cancer associates Gene CHEK2 and Provenance of this association is DisGeNET.",
    "Metformin was associated with a lower incidence of cancer in patients with type 2 diabetes.",
    "HLA-B alleles confer risk of psoriasis.",
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return (SentenceTransformerEmbedder(cache_dir=cache, precision="fp32"),
            SentenceTransformerEmbedder(cache_dir=cache, precision="bf16"), cache)


def test_bf16_vectors_are_unit_length_near_fp32_and_named_apart(pair):
    fp32, bf16, cache = pair
    a, b = fp32.encode(TEXTS), bf16.encode(TEXTS)
    assert (fp32.model_name, bf16.model_name) == ("all-MiniLM-L6-v2", "all-MiniLM-L6-v2@bf16")
    assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cosine = np.einsum("ij,ij->i", a, b)
    assert cosine.min() > 0.999 and not np.array_equal(a, b)  # other vectors, close ones
    question = "Which gene is linked to psoriasis?"
    assert np.argsort(-(a @ fp32.encode([question], persist=False)[0])).tolist()[:2] == \
        np.argsort(-(b @ bf16.encode([question], persist=False)[0])).tolist()[:2]
    # each keeps its own cache: a bf16 vector is never served as an fp32 one
    assert {p.name for p in cache.iterdir()} == {"all-MiniLM-L6-v2", "all-MiniLM-L6-v2_bf16"}


def test_auto_is_bf16_only_for_torch_on_a_cpu_with_amx(monkeypatch):
    monkeypatch.setattr(kgrag.encoders.embeddings, "cpu_has_amx", lambda: True)
    assert resolve_precision("auto") == "bf16"
    assert resolve_precision("auto", backend="onnx") == "fp32"
    assert resolve_precision("auto", device="cuda") == "fp32"
    assert resolve_precision("fp32") == "fp32"
    monkeypatch.setattr(kgrag.encoders.embeddings, "cpu_has_amx", lambda: False)
    assert resolve_precision("auto") == "fp32" and resolve_precision("bf16") == "bf16"
    with pytest.raises(BackendUnavailableError, match="KGRAG_EMBEDDING_PRECISION"):
        resolve_precision("fp16")
    with pytest.raises(BackendUnavailableError, match="KGRAG_EMBEDDING_PRECISION=fp32"):
        resolve_precision("bf16", backend="onnx-int8")


def test_settings_name_the_vectors_they_make_and_refuse_bf16_with_onnx(tmp_settings, monkeypatch):
    monkeypatch.setattr(kgrag.encoders.embeddings, "cpu_has_amx", lambda: True)
    auto = tmp_settings.model_copy(update={"embedding_precision": "auto"})
    assert settings_identity(auto) == "all-MiniLM-L6-v2@bf16"
    assert settings_identity(tmp_settings) == "all-MiniLM-L6-v2"  # fp32, as the tests pin it
    assert "KGRAG_EMBEDDING_PRECISION=bf16" in settings_for_identity("all-MiniLM-L6-v2@bf16")
    assert "KGRAG_EMBEDDING_PRECISION=fp32" in settings_for_identity("all-MiniLM-L6-v2")
    from kgrag.errors import SettingsError
    from kgrag.settings import load_settings

    with pytest.raises(SettingsError, match="KGRAG_EMBEDDING_PRECISION=auto or fp32"):
        load_settings(embedding_precision="bf16", embedding_backend="onnx")


def test_a_text_index_built_in_fp32_is_refused_under_bf16_naming_the_fix(pair, tmp_settings):
    from kgrag.indexes.text_index import TextIndex

    fp32, bf16, _ = pair
    passages = [Passage(id=f"p{i}", pmid=str(100 + i), text=t, source="user") for i, t in enumerate(TEXTS)]
    TextIndex.build(passages, tmp_settings, embedder=fp32, progress=False)
    with pytest.raises(IndexMismatchError, match="KGRAG_EMBEDDING_PRECISION=fp32"):
        TextIndex.load(tmp_settings, embedder=bf16)
    [hits] = TextIndex.load(tmp_settings, embedder=fp32).search(["Which gene is linked to psoriasis?"], k=1)
    assert hits[0].passage.id in ("p0", "p3")

"""Damaged artefacts end in an ArtefactError naming the file (or, for the embedding cache, a warning and
recomputed vectors), never a wrong result: each case a fault probe found, on tiny fixtures."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from kgrag import artefacts
from kgrag.artefacts import ARTEFACTS_FILE, verify, write_manifest
from kgrag.health import verify_all
from kgrag.retrieval.graph_context import Candidate
from kgrag.indexes.corpus import Passage, load_corpus
from kgrag.encoders.cache import DiskCache, check_cache
from kgrag.encoders.embeddings import SentenceTransformerEmbedder
from kgrag.errors import ArtefactError, KgragError
from kgrag.retrieval.pruning import prune
from kgrag.settings import Settings, load_settings
from kgrag.indexes.text_index import BM25_DIR, FAISS_FILE, TextIndex
from kgrag.types import Evidence
from quco.index_builder import build_index, jsonl_texts
from quco.stats import LocalInfiniGramStats
from tests.kgrag_env import use_kgrag_env

REBUILD_TEXT = "kgrag build-text-index"
REBUILD_STATS = "kgrag build-stats-index"


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def built_text_index(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path,
                     embedder: SentenceTransformerEmbedder) -> Path:
    home = tmp_path_factory.mktemp("text-home")
    settings = load_settings(home=home, sources_dir=fixtures_dir / "text")
    TextIndex.build(load_corpus(settings).passages, settings, embedder=embedder, progress=False)
    return settings.text_index_dir  # type: ignore[return-value]


@pytest.fixture()
def text_settings(tmp_path: Path, fixtures_dir: Path, built_text_index: Path,
                  monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose text index is a fresh copy of the tiny built one (each test damages its own)."""
    use_kgrag_env(monkeypatch)
    settings = load_settings(home=tmp_path / "home", sources_dir=fixtures_dir / "text")
    shutil.copytree(built_text_index, settings.text_index_dir, copy_function=shutil.copy2)
    return settings


@pytest.fixture(scope="module")
def built_stats_index(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("stats-home") / "stats"
    build_index(jsonl_texts(fixtures_dir / "quco" / "corpus.jsonl"), out)
    return out


@pytest.fixture()
def stats_dir(tmp_path: Path, built_stats_index: Path) -> Path:
    target = tmp_path / "stats"
    shutil.copytree(built_stats_index, target, copy_function=shutil.copy2)
    return target


def overwrite(path: Path, offset: int, data: bytes) -> None:
    """Same-size damage: ``data`` written over ``path`` at ``offset``, the modification time kept."""
    stat = path.stat()
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def truncate(path: Path, keep: float = 0.5) -> None:
    with path.open("r+b") as handle:
        handle.truncate(int(path.stat().st_size * keep))


def random_bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


# --- the manifest itself -------------------------------------------------------------------------
def test_manifest_lists_every_file_and_full_verification_catches_same_size_damage(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bin").write_bytes(b"x" * 1000)
    (tmp_path / "sub" / "b.txt").write_text("hello")
    manifest = write_manifest(tmp_path, kind="thing", rebuild="make thing", block_size=256)
    assert set(manifest.files) == {"a.bin", "sub/b.txt"} and len(manifest.files["a.bin"].sha256) == 4
    assert verify(tmp_path, full=True, kind="thing").status == "ok"
    overwrite(tmp_path / "a.bin", 600, b"y")
    assert verify(tmp_path, full=False, kind="thing").status == "ok"  # sizes agree: the cheap check cannot see it
    with pytest.raises(ArtefactError, match=r"a\.bin: checksum mismatch in 1 of 4 block\(s\) "
                                            r"\(the first starts at byte 512\).*rebuild it with `make thing`"):
        verify(tmp_path, full=True, kind="thing")


def test_sizes_are_checked_on_every_verification(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"x" * 1000)
    (tmp_path / "b.bin").write_bytes(b"x")
    write_manifest(tmp_path, kind="thing", rebuild="make thing")
    truncate(tmp_path / "a.bin")
    (tmp_path / "b.bin").unlink()
    with pytest.raises(ArtefactError) as caught:
        verify(tmp_path, full=False, kind="thing")
    message = str(caught.value)
    assert "a.bin: size 500 bytes, expected 1000" in message and "b.bin: missing" in message
    assert isinstance(caught.value, KgragError)


def test_a_file_changed_after_the_manifest_is_checked_in_full(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"x" * 1000)
    write_manifest(tmp_path, kind="thing", rebuild="make thing")
    manifest_time = (tmp_path / ARTEFACTS_FILE).stat().st_mtime
    (tmp_path / "a.bin").write_bytes(b"y" * 1000)
    os.utime(tmp_path / "a.bin", (manifest_time + 10, manifest_time + 10))
    with pytest.raises(ArtefactError, match="checksum mismatch"):
        verify(tmp_path, full=False, kind="thing")


# --- text index ----------------------------------------------------------------------------------
def test_intact_text_index_loads_verified_in_full(text_settings: Settings, embedder) -> None:
    index = TextIndex.load(text_settings, embedder=embedder)
    assert index.verification is not None and index.verification.status == "ok" and index.verification.full
    assert index.verification.bytes_checked >= (text_settings.text_index_dir / FAISS_FILE).stat().st_size
    assert index.search(["Is HLA-B a risk locus for psoriasis?"], k=1, fusion="dense")[0][0].passage.pmid == "1002"


def test_random_bytes_inside_faiss_index_are_an_error_naming_it(text_settings: Settings, embedder) -> None:
    path = text_settings.text_index_dir / FAISS_FILE
    overwrite(path, path.stat().st_size // 2, random_bytes(4096))
    with pytest.raises(ArtefactError, match=rf"{FAISS_FILE}: checksum mismatch.*`{REBUILD_TEXT}`"):
        TextIndex.load(text_settings, embedder=embedder)


def test_damaged_vectors_that_pass_a_size_check_give_no_scores(text_settings: Settings, embedder,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A large index is checked by size on load; its search still refuses scores that are not cosines."""
    monkeypatch.setattr(artefacts, "FULL_ON_LOAD_MAX_BYTES", 0)
    path = text_settings.text_index_dir / FAISS_FILE
    overwrite(path, path.stat().st_size // 2, random_bytes(4096))
    index = TextIndex.load(text_settings, embedder=embedder)
    assert index.verification is not None and not index.verification.full
    with pytest.raises(ArtefactError, match=rf"not a cosine.*{FAISS_FILE} is damaged.*`{REBUILD_TEXT}`"):
        index.search(["Is HLA-B a risk locus for psoriasis?"], k=11, fusion="dense")
    with pytest.raises(ArtefactError, match="not a cosine"):
        index.search(["Is HLA-B a risk locus for psoriasis?"], k=5, fusion="rrf")


def test_an_interrupted_build_beside_the_index_makes_loading_verify_in_full(text_settings: Settings, embedder,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artefacts, "FULL_ON_LOAD_MAX_BYTES", 0)
    directory = text_settings.text_index_dir
    (directory.parent / f".{directory.name}-k1lled").mkdir()  # a killed build's staging folder
    path = directory / FAISS_FILE
    overwrite(path, 100, random_bytes(64))
    with pytest.raises(ArtefactError, match=f"{FAISS_FILE}: checksum mismatch"):
        TextIndex.load(text_settings, embedder=embedder)


def test_truncated_faiss_index_is_an_error_naming_it(text_settings: Settings, embedder) -> None:
    truncate(text_settings.text_index_dir / FAISS_FILE)
    with pytest.raises(ArtefactError, match=rf"{FAISS_FILE}: size \d+ bytes, expected \d+.*`{REBUILD_TEXT}`"):
        TextIndex.load(text_settings, embedder=embedder)


def test_truncated_files_of_an_index_without_manifest_are_errors_too(text_settings: Settings, embedder,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """An index built before file manifests loads with a warning; a damaged file is still named."""
    directory = text_settings.text_index_dir
    (directory / ARTEFACTS_FILE).unlink()
    truncate(directory / FAISS_FILE)
    with pytest.raises(ArtefactError, match=rf"{FAISS_FILE} is damaged or unreadable.*`{REBUILD_TEXT}`"):
        TextIndex.load(text_settings, embedder=embedder)
    assert f"no {ARTEFACTS_FILE}" in capsys.readouterr().err


def test_truncated_bm25_array_is_an_error_naming_it(text_settings: Settings, embedder) -> None:
    npy = sorted((text_settings.text_index_dir / BM25_DIR).glob("*.npy"))[0]
    truncate(npy)
    with pytest.raises(ArtefactError, match=rf"{npy.name}: size.*`{REBUILD_TEXT}`"):
        TextIndex.load(text_settings, embedder=embedder)


def test_truncated_bm25_array_without_manifest_is_an_error(text_settings: Settings, embedder) -> None:
    (text_settings.text_index_dir / ARTEFACTS_FILE).unlink()
    truncate(sorted((text_settings.text_index_dir / BM25_DIR).glob("*.npy"))[0])
    with pytest.raises(ArtefactError, match=rf"BM25 index .* is damaged or unreadable.*`{REBUILD_TEXT}`"):
        TextIndex.load(text_settings, embedder=embedder)


def test_bm25_scores_must_be_finite_but_need_not_be_cosines(text_settings: Settings, embedder) -> None:
    index = TextIndex.load(text_settings, embedder=embedder)
    bm25 = index._bm25
    scores = {"value": np.array([[25.0, 3.0]])}
    bm25.search = lambda queries, k, allowed=None: (np.array([[0, 1]]), scores["value"])  # type: ignore[method-assign]
    assert [h.score for h in index.search(["psoriasis"], k=2, fusion="bm25")[0]] == [25.0, 3.0]  # unbounded: fine
    scores["value"] = np.array([[np.nan, 3.0]])
    with pytest.raises(ArtefactError, match=f"not a finite BM25 score.*{BM25_DIR} is damaged"):
        index.search(["psoriasis"], k=2, fusion="bm25")
    with pytest.raises(ArtefactError, match="a row outside the passages it may return"):
        index._check_dense(np.array([[99]]), np.array([[0.5]]), index._live, exact=True)


def test_a_reader_puts_back_the_index_a_build_killed_between_its_renames_set_aside(
        text_settings: Settings, embedder, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 25 item 7: the previous index serves again, unchanged (was: "Rename .text_index-old-... back")."""
    directory = text_settings.text_index_dir
    before = TextIndex.load(text_settings, embedder=embedder).search(["psoriasis"], k=3)
    aside = directory.with_name(f".{directory.name}-old-123")
    directory.rename(aside)  # a build died after its first rename
    index = TextIndex.load(text_settings, embedder=embedder)
    assert index.search(["psoriasis"], k=3) == before and not aside.exists()
    assert f"put back {aside.name}" in capsys.readouterr().err


def test_a_reader_does_not_put_back_a_damaged_set_aside_index(text_settings: Settings, embedder) -> None:
    directory = text_settings.text_index_dir
    aside = directory.with_name(f".{directory.name}-old-123")
    directory.rename(aside)
    truncate(aside / FAISS_FILE)
    with pytest.raises(ArtefactError, match=rf"not complete.*{FAISS_FILE}.*truncated.*`{REBUILD_TEXT}`"):
        TextIndex.load(text_settings, embedder=embedder)


def test_a_rebuild_leaves_one_verified_index_and_no_leftovers(text_settings: Settings, embedder) -> None:
    passages = [Passage(id=str(i), text=f"Passage {i} about psoriasis and HLA-B.") for i in range(5)]
    TextIndex.build(passages, text_settings, embedder=embedder, bm25=False, progress=False)
    directory = text_settings.text_index_dir
    assert [p.name for p in directory.parent.iterdir() if p.name.startswith(".")] == []
    # faiss.index, manifest.json, passages.sqlite, vectors/shard-00000.npy
    assert verify(directory, full=True, kind="text index").files == 4
    assert TextIndex.load(text_settings, embedder=embedder).manifest.passage_count == 5


# --- statistics index ------------------------------------------------------------------------------
def test_intact_stats_index_loads_verified(stats_dir: Path) -> None:
    stats = LocalInfiniGramStats(stats_dir)
    assert stats.verification.status == "ok" and stats.verification.full
    assert stats.count(["metformin"]) == [3]


def test_a_block_of_ff_in_tokenized_is_an_error_not_a_zero_count(stats_dir: Path) -> None:
    path = stats_dir / "tokenized.0"
    overwrite(path, 0, b"\xff" * (path.stat().st_size // 2))
    with pytest.raises(ArtefactError, match=rf"tokenized\.0: checksum mismatch.*`{REBUILD_STATS}`"):
        LocalInfiniGramStats(stats_dir)


def test_truncated_tokenizer_is_an_error_naming_it(stats_dir: Path) -> None:
    truncate(stats_dir / "tokenizer.json")
    with pytest.raises(ArtefactError, match=rf"tokenizer\.json: size.*`{REBUILD_STATS}`"):
        LocalInfiniGramStats(stats_dir)


def test_truncated_tokenizer_without_manifest_is_an_error_naming_it(stats_dir: Path) -> None:
    (stats_dir / ARTEFACTS_FILE).unlink()
    truncate(stats_dir / "tokenizer.json")
    with pytest.raises(ArtefactError, match=rf"tokenizer\.json is damaged or unreadable.*`{REBUILD_STATS}`"):
        LocalInfiniGramStats(stats_dir)


def test_stats_rebuild_swaps_whole_and_leaves_nothing_beside(stats_dir: Path, fixtures_dir: Path) -> None:
    build_index(jsonl_texts(fixtures_dir / "quco" / "corpus.jsonl"), stats_dir)
    assert sorted(p.name for p in stats_dir.parent.iterdir()) == ["stats", "stats.build.lock"]  # the lock stays
    assert LocalInfiniGramStats(stats_dir).count(["metformin"]) == [3]


# --- embedding cache -------------------------------------------------------------------------------
TEXTS = ["psoriasis", "HLA-B", "Metformin lowers glucose.", "Natalizumab and multiple sclerosis"]


def fresh_cache(embedder: SentenceTransformerEmbedder, directory: Path) -> SentenceTransformerEmbedder:
    """The module's embedder as a new process would start: empty memory, the on-disk cache in ``directory``."""
    embedder._memory.clear()
    embedder._disk = DiskCache(directory, embedder.dimension)
    embedder.encoded_count = 0
    return embedder


@pytest.fixture()
def cached(tmp_path: Path, embedder: SentenceTransformerEmbedder):
    directory = tmp_path / "cache"
    expected = fresh_cache(embedder, directory).encode(TEXTS)
    yield directory, expected
    embedder._disk = None
    embedder._memory.clear()


def _shard_files(directory: Path, suffix: str) -> list[Path]:
    return sorted(directory.glob(f"shard-*{suffix}"))


@pytest.mark.parametrize("damage", ["random npy", "truncated npy", "random json", "truncated json"])
def test_damaged_cache_shard_is_set_aside_with_a_warning_and_recomputed(cached, embedder, damage: str,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    directory, expected = cached
    kind, suffix = damage.split()
    path = _shard_files(directory, f".{suffix}")[0]
    if kind == "random":
        size = min(600, path.stat().st_size // 2)
        overwrite(path, path.stat().st_size - size, random_bytes(size, seed=1))
    else:
        truncate(path)
    again = fresh_cache(embedder, directory)
    vectors = again.encode(TEXTS)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    assert again.encoded_count == len(TEXTS)  # recomputed, not read from the damaged shard
    err = capsys.readouterr().err
    assert f"warning: damaged embedding cache shard: {path}" in err and "computed again" in err
    assert (directory / f"{path.name}.damaged").exists() and not path.exists()
    third = fresh_cache(embedder, directory)
    np.testing.assert_allclose(third.encode(TEXTS), expected, atol=1e-5)
    assert third.encoded_count == 0 and capsys.readouterr().err == ""  # the recomputed shard serves now


def test_damaged_legacy_shard_without_checksum_is_caught_by_its_values(cached, embedder,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    directory, expected = cached
    keys_file = _shard_files(directory, ".json")[0]
    keys_file.write_text(json.dumps(json.loads(keys_file.read_text())["keys"]))  # the format before checksums
    npy = _shard_files(directory, ".npy")[0]
    overwrite(npy, npy.stat().st_size - 1024, random_bytes(1024, seed=2))
    again = fresh_cache(embedder, directory)
    np.testing.assert_allclose(again.encode(TEXTS), expected, atol=1e-5)
    assert again.encoded_count == len(TEXTS)
    assert "not finite unit vectors" in capsys.readouterr().err


def test_check_cache_reports_damage_without_changing_anything(cached) -> None:
    directory, _ = cached
    assert check_cache(directory).status == "ok"
    npy = _shard_files(directory, ".npy")[0]
    overwrite(npy, npy.stat().st_size - 8, b"\0" * 8)
    result = check_cache(directory)
    assert result.status == "damaged" and str(npy) in result.problems[0] and "checksum mismatch" in result.problems[0]
    assert npy.exists()


# --- pruning -------------------------------------------------------------------------------------
def test_similarities_that_are_not_cosines_are_errors_naming_the_cache(tmp_settings: Settings) -> None:
    candidates = [Candidate(evidence=Evidence(kind="kg", text=f"edge {i}", score=0.0, id=str(i), sources=["x"]),
                            group="DOID:1") for i in range(3)]
    question = np.array([1.0, 0.0], dtype=np.float32)
    fine = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    kept, _ = prune(question, candidates, fine, tmp_settings)
    assert kept
    for bad in (np.array([[1.0, 0.0], [np.nan, 0.0], [0.0, 1.0]], dtype=np.float32),
                np.array([[1.0, 0.0], [4.5e35, 0.0], [0.0, 1.0]], dtype=np.float32),
                np.array([[1.0, 0.0], [1.01, 0.0], [0.0, 1.0]], dtype=np.float32)):
        with pytest.raises(ArtefactError, match=rf"not a cosine.*embedding cache {tmp_settings.home / 'embeddings'}"):
            prune(question, candidates, bad, tmp_settings)


# --- doctor ----------------------------------------------------------------------------------------
def test_verify_all_reports_every_artefact_of_a_home(text_settings: Settings, built_stats_index: Path,
                                                     cached) -> None:
    shutil.copytree(built_stats_index, text_settings.home / "stats")
    cache_dir, _ = cached
    shutil.copytree(cache_dir, text_settings.home / "embeddings" / "all-MiniLM-L6-v2")
    settings = load_settings(home=text_settings.home)
    overwrite(settings.home / "stats" / "offset.0", 0, b"\x07")
    checks = {c.kind: c for c in verify_all(settings, full=True)}
    assert checks["text index"].status == "ok" and checks["text index"].full
    assert checks["statistics index"].status == "damaged"
    assert "offset.0: checksum mismatch" in checks["statistics index"].problems[0]
    assert checks["statistics index"].rebuild == REBUILD_STATS
    assert checks["embedding cache"].status == "ok"
    empty = load_settings(home=text_settings.home / "nothing")
    assert [c.status for c in verify_all(empty)] == ["missing", "missing"]


def test_a_stats_reader_puts_back_the_index_a_killed_build_set_aside(stats_dir: Path) -> None:
    before = LocalInfiniGramStats(stats_dir).count(["metformin"])
    stats_dir.rename(stats_dir.with_name(".stats-old-5"))
    assert LocalInfiniGramStats(stats_dir).count(["metformin"]) == before == [3]


def test_a_killed_stats_build_beside_the_index_makes_loading_verify_in_full(stats_dir: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artefacts, "FULL_ON_LOAD_MAX_BYTES", 0)
    assert not LocalInfiniGramStats(stats_dir).verification.full
    stats_dir.with_name("stats.building").mkdir()
    overwrite(stats_dir / "table.0", 0, b"\x00\x01")
    with pytest.raises(ArtefactError, match=r"table\.0: checksum mismatch"):
        LocalInfiniGramStats(stats_dir)

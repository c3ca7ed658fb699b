"""The index builder: path rules, manifest, tokenizer beside the index, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quco.index_builder import IndexBuildError, build_index, check_index_path, corpus_checksum, jsonl_texts, read_stats_manifest
from quco.tokenizer import WordTokenizer


@pytest.mark.parametrize("word", ["tokenized", "table", "offset", "metadata", "unigram", "Table"])
def test_paths_the_engine_would_misread_are_refused(tmp_path: Path, word: str, fixtures_dir: Path) -> None:
    with pytest.raises(IndexBuildError, match=word.lower()):
        check_index_path(tmp_path / f"my-{word}-dir" / "idx")
    with pytest.raises(IndexBuildError, match="choose a path"):
        build_index(jsonl_texts(fixtures_dir / "quco" / "corpus.jsonl"), tmp_path / word)
    assert not (tmp_path / word).exists()


def test_manifest_records_what_the_index_was_built_from(tmp_path: Path, fixtures_dir: Path) -> None:
    corpus = fixtures_dir / "quco" / "corpus.jsonl"
    manifest = build_index(jsonl_texts(corpus), tmp_path / "idx")
    texts = [json.loads(line)["text"] for line in corpus.open()]
    assert manifest.doc_count == 8 and manifest.total_tokens == 79
    assert manifest.token_dtype == "u16" and manifest.normaliser == "kgrag.text.normalise"
    assert manifest.corpus_sha256 == corpus_checksum(texts)
    assert read_stats_manifest(tmp_path / "idx") == manifest
    assert {"tokenized.0", "table.0", "offset.0", "tokenizer.json", "manifest.json"} <= {p.name for p in (tmp_path / "idx").iterdir()}
    tok = WordTokenizer.load(tmp_path / "idx" / "tokenizer.json")
    assert tok.vocab_size == manifest.vocab_size
    assert tok.encode_query("METFORMIN") == tok.encode_query("metformin") is not None
    assert tok.encode_query("warfarin") is None
    # a rebuild over another corpus replaces the index and its checksum
    other = tmp_path / "other.jsonl"
    other.write_text('{"text": "only warfarin here"}\n')
    assert build_index(jsonl_texts(other), tmp_path / "idx").corpus_sha256 != manifest.corpus_sha256
    assert read_stats_manifest(tmp_path / "idx").total_tokens == 3
    assert not list(tmp_path.glob(".idx.staging-*"))


def test_bad_corpora_are_named(tmp_path: Path) -> None:
    with pytest.raises(IndexBuildError, match="not found"):
        jsonl_texts(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"title": "no text"}\n')
    with pytest.raises(IndexBuildError, match=r"bad.jsonl:2: no string field 'text'"):
        build_index(jsonl_texts(bad), tmp_path / "idx")
    bad.write_text('{"text": "fine"}\nnot json\n')
    with pytest.raises(IndexBuildError, match=r"bad.jsonl:2: not JSON"):
        build_index(jsonl_texts(bad), tmp_path / "idx")
    bad.write_text('{"text": "!!!"}\n')
    with pytest.raises(IndexBuildError, match="no words"):
        build_index(jsonl_texts(bad), tmp_path / "idx")
    assert not (tmp_path / "idx").exists()

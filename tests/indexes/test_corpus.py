"""The corpus loaders: PubMedQA contexts only, BioASQ snippets with PMIDs, user corpora, malformed rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgrag.indexes.corpus import (
    CorpusError,
    Passage,
    corpus_checksum,
    deduplicate,
    load_bioasq,
    load_corpus,
    load_pubmedqa,
    load_user_corpus,
    read_jsonl,
    write_jsonl,
)
from kgrag.settings import load_settings


@pytest.fixture()
def text_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "text"


def test_pubmedqa_reads_contexts_never_answers(text_dir: Path) -> None:
    path = text_dir / "pubmedqa" / "pqal_dev_labelled.json"
    result = load_pubmedqa(path)
    assert [p.id for p in result.passages] == ["pubmedqa:1001:0", "pubmedqa:1001:1", "pubmedqa:1002:0", "pubmedqa:1002:1"]
    assert {p.pmid for p in result.passages} == {"1001", "1002"}
    joined = " ".join(p.text for p in result.passages)
    assert "CONCLUSIONMARKER" not in joined and "BACKGROUND" not in joined
    # the broken row is reported with its file and key, not dropped silently
    assert len(result.malformed) == 1 and "1003" in result.malformed[0] and str(path) in result.malformed[0]


def test_pubmedqa_reports_an_empty_paragraph(text_dir: Path) -> None:
    result = load_pubmedqa(text_dir / "pubmedqa" / "pqal_test_unlabelled.json")
    assert len(result.passages) == 3
    assert result.malformed == [f"{text_dir / 'pubmedqa' / 'pqal_test_unlabelled.json'}: PMID 2002: CONTEXTS[1] is not text"]


def test_bioasq_snippets_take_pmid_from_url_and_title(text_dir: Path) -> None:
    result = load_bioasq(text_dir / "bioasq" / "Task1BGoldenEnriched" / "1B1_golden.json")
    by_pmid = {p.pmid for p in result.passages}
    assert by_pmid == {"3001", "3003", "3004", "3005"}
    brca = [p for p in result.passages if p.pmid == "3001"]
    assert all(p.title == "BRCA1 mutations in familial breast cancer" for p in brca)
    assert all(p.source == "bioasq" and p.id.startswith("bioasq:") for p in result.passages)
    assert "IDEALMARKER" not in " ".join(p.text for p in result.passages)
    assert len(result.malformed) == 2
    assert any("not a PubMed URL" in m and "question q1, snippet 3" in m for m in result.malformed)
    assert any("no text" in m and "snippet 4" in m for m in result.malformed)


def test_public_corpus_deduplicates_across_sources(text_dir: Path, tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, sources_dir=text_dir)
    result = load_corpus(settings)
    texts = [p.text for p in result.passages]
    assert len(texts) == len(set(texts))
    # the BRCA1 sentence twice in BioASQ and the smoking sentence in PubMedQA and BioASQ: two duplicates
    assert result.duplicates == 2
    smoking = [p for p in result.passages if p.text.startswith("Tobacco smoking")]
    assert [p.source for p in smoking] == ["pubmedqa"]
    stats = result.stats()
    assert stats["by_source"] == {"pubmedqa": 7, "bioasq": 4}
    assert stats["malformed"] == 4


def test_missing_sources_name_the_file(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, sources_dir=tmp_path)
    with pytest.raises(Exception, match="pqal_dev_labelled.json"):
        load_corpus(settings)


def test_user_jsonl_counts_bad_lines_with_line_numbers(text_dir: Path) -> None:
    path = text_dir / "user" / "corpus.jsonl"
    result = load_user_corpus(path)
    assert [p.id for p in result.passages] == ["u1", "corpus:5"]
    assert result.passages[0].pmid == "4001"
    assert result.duplicates == 1
    assert [m.split(": ")[0] for m in result.malformed] == [f"{path}:2", f"{path}:3", f"{path}:6"]
    assert "field text" in result.malformed[1]


def test_user_text_folder_one_passage_per_paragraph(text_dir: Path) -> None:
    result = load_user_corpus(text_dir / "user" / "docs")
    assert [p.id for p in result.passages] == ["malaria.txt#0", "malaria.txt#1", "sub/asthma.txt#0"]
    assert result.passages[0].title == "malaria"
    assert result.malformed == [f"{text_dir / 'user' / 'docs' / 'empty.txt'}: empty file"]


def test_user_corpus_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "corpus.csv"
    path.write_text("a,b\n")
    with pytest.raises(CorpusError, match="corpus.csv"):
        load_user_corpus(path)


def test_corpus_with_no_usable_passage_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("{oops\n")
    with pytest.raises(CorpusError, match=r"no usable passages \(1 malformed.*bad.jsonl:1"):
        load_corpus(load_settings(home=tmp_path), path)


def test_jsonl_round_trip_and_checksum(tmp_path: Path) -> None:
    passages = [Passage(id="a", pmid="1", title="T", text="alpha", source="x"), Passage(id="b", text="beta")]
    assert write_jsonl(passages, tmp_path / "p.jsonl") == 2
    back = read_jsonl(tmp_path / "p.jsonl")
    assert back.passages == passages and back.malformed == []
    assert corpus_checksum(back.passages) == corpus_checksum(passages)
    changed = [passages[0], Passage(id="b", text="beta!")]
    assert corpus_checksum(changed) != corpus_checksum(passages)
    assert json.loads((tmp_path / "p.jsonl").read_text().splitlines()[1]) == {"id": "b", "text": "beta", "source": "user"}


def test_deduplicate_ignores_case_and_spacing() -> None:
    kept, dropped = deduplicate([Passage(id="1", text="Alpha  beta."), Passage(id="2", text="alpha beta"),
                                 Passage(id="3", text="gamma")])
    assert [p.id for p in kept] == ["1", "3"] and dropped == 1


@pytest.mark.integration
def test_real_corpus_counts(shared_data_dir: Path, tmp_path: Path) -> None:
    result = load_corpus(load_settings(home=tmp_path, sources_dir=shared_data_dir))
    stats = result.stats()
    assert stats["malformed"] == 0
    assert stats["by_source"]["pubmedqa"] > 3000  # 1,000 abstracts, a few paragraphs each
    assert 19000 < stats["by_source"]["bioasq"] <= 21998
    assert stats["pmids"] > 14000
    assert all("LONG_ANSWER" not in p.text for p in result.passages[:10])

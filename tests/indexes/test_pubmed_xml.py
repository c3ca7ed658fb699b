"""PubMed baseline/update XML: fields, malformed records reported, deletions, damaged files, file order."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import pytest

from kgrag.indexes.corpus import CorpusError, Passage
from kgrag.indexes.pubmed_xml import PubmedDeletion, is_pubmed_corpus, pubmed_files, read_pubmed

HEADER = ('<?xml version="1.0" ?>\n'
          '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
          '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
          "<PubmedArticleSet>\n")
FOOTER = "</PubmedArticleSet>\n"


def article(pmid: str | None, *, title: str | None = "A title.", abstract: str = "",
            pub_date: str = "<Year>2019</Year>", mesh: tuple[str, ...] = ()) -> str:
    """One ``<PubmedArticle>`` in the DTD's shape; ``abstract`` is the raw ``<AbstractText>`` markup."""
    pmid_xml = f'<PMID Version="1">{pmid}</PMID>' if pmid is not None else ""
    title_xml = f"<ArticleTitle>{title}</ArticleTitle>" if title is not None else ""
    abstract_xml = f"<Abstract>{abstract}</Abstract>" if abstract else ""
    mesh_xml = "".join(f'<MeshHeading><DescriptorName UI="D{i:06d}" MajorTopicYN="N">{name}</DescriptorName>'
                       "</MeshHeading>" for i, name in enumerate(mesh))
    return (f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">{pmid_xml}'
            '<DateCompleted><Year>2020</Year><Month>01</Month><Day>02</Day></DateCompleted>'
            f'<Article PubModel="Print"><Journal><ISSN IssnType="Electronic">1234-5678</ISSN>'
            f'<JournalIssue CitedMedium="Internet"><Volume>7</Volume><PubDate>{pub_date}</PubDate></JournalIssue>'
            f"<Title>Journal of Tests</Title></Journal>{title_xml}{abstract_xml}"
            '<Language>eng</Language></Article>'
            f"{'<MeshHeadingList>' + mesh_xml + '</MeshHeadingList>' if mesh else ''}"
            "<CommentsCorrectionsList><CommentsCorrections RefType=\"Cites\"><RefSource>x</RefSource>"
            '<PMID Version="1">999</PMID></CommentsCorrections></CommentsCorrectionsList>'
            "</MedlineCitation>"
            f'<PubmedData><PublicationStatus>ppublish</PublicationStatus><ArticleIdList>'
            f'<ArticleId IdType="pubmed">{pmid}</ArticleId></ArticleIdList></PubmedData></PubmedArticle>\n')


def deletion(*pmids: str) -> str:
    return "<DeleteCitation>" + "".join(f'<PMID Version="1">{p}</PMID>' for p in pmids) + "</DeleteCitation>\n"


def write(path: Path, *records: str, compress: bool = True) -> Path:
    data = (HEADER + "".join(records) + FOOTER).encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


BASELINE = (
    article("31000001", title="Psoriasis and <i>IL17A</i>\n   in   skin.",
            abstract=('<AbstractText Label="BACKGROUND" NlmCategory="BACKGROUND">Psoriasis is common.</AbstractText>'
                      '<AbstractText Label="RESULTS" NlmCategory="RESULTS">IL-17 <sup>+</sup> cells rose.'
                      "</AbstractText>"),
            mesh=("Psoriasis", "Interleukin-17")),
    article("9800002", title="An older paper.", abstract="<AbstractText>Unlabelled abstract.</AbstractText>",
            pub_date="<MedlineDate>1998 Dec-1999 Jan</MedlineDate>"),
    article("31000003", title="Title only, no abstract."),
    article("31000004", title=None),                      # neither title nor abstract: skipped
    article(None, title="Lost its PMID."),                  # no PMID: reported by position
    article("31000006", title="Bad year.", pub_date="<Year>0019</Year>"),
    article("31000007", title="After the bad ones."),
)


def read_all(path: Path) -> tuple[list[Passage | PubmedDeletion], list[str]]:
    problems: list[str] = []
    return list(read_pubmed(path, problems)), problems


def test_fields_of_a_baseline_file(tmp_path: Path) -> None:
    path = write(tmp_path / "pubmed25n0001.xml.gz", *BASELINE)
    items, problems = read_all(path)
    passages = [i for i in items if isinstance(i, Passage)]
    assert [p.id for p in passages] == ["pubmed:31000001", "pubmed:9800002", "pubmed:31000003", "pubmed:31000007"]
    first = passages[0]
    assert first.pmid == "31000001" and first.source == "pubmed"
    assert first.title == "Psoriasis and IL17A in skin."
    assert first.text == ("Psoriasis and IL17A in skin. BACKGROUND: Psoriasis is common. "
                          "RESULTS: IL-17 + cells rose.")
    assert first.year == 2019
    assert first.mesh == ["Psoriasis", "Interleukin-17"]
    older = passages[1]
    assert older.year == 1998 and older.text == "An older paper. Unlabelled abstract." and older.mesh == []
    title_only = passages[2]
    assert title_only.text == title_only.title == "Title only, no abstract."
    # the CommentsCorrections PMID and the ArticleId are never taken for the record's PMID
    assert all(p.pmid != "999" for p in passages)


def test_malformed_records_are_reported_and_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "pubmed25n0001.xml.gz", *BASELINE)
    items, problems = read_all(path)
    assert problems == [
        f"{path}: PMID 31000004: no title or abstract text",
        f"{path}: record 5: no PMID",
        f"{path}: PMID 31000006: year '0019' is not a plausible year (1600-2100)",
    ]
    assert items[-1].pmid == "31000007"  # the records after the bad ones are still read


def test_bad_pmid_and_year_fallbacks(tmp_path: Path) -> None:
    no_year = article("5", title="No date at all.", pub_date="<Season>Spring</Season>")
    article_date = article("6", title="Electronic date.", pub_date="<MedlineDate>Spring</MedlineDate>").replace(
        "<Language>", '<ArticleDate DateType="Electronic"><Year>2021</Year></ArticleDate><Language>')
    path = write(tmp_path / "a.xml", article("12ab", title="Odd PMID."), no_year, article_date, compress=False)
    items, problems = read_all(path)
    assert problems == [f"{path}: PMID 12ab: not a number"]
    assert [(i.pmid, i.year) for i in items if isinstance(i, Passage)] == [("5", None), ("6", 2021)]


def test_update_file_yields_records_and_deletions_in_document_order(tmp_path: Path) -> None:
    path = write(tmp_path / "pubmed25n1275.xml.gz",
                 deletion("31000003", "9800002"),
                 article("31000001", title="Psoriasis, revised.", abstract="<AbstractText>New.</AbstractText>"),
                 deletion("31000007"))
    items, problems = read_all(path)
    assert problems == []
    assert [type(i).__name__ for i in items] == ["PubmedDeletion", "PubmedDeletion", "Passage", "PubmedDeletion"]
    assert [i.pmid for i in items] == ["31000003", "9800002", "31000001", "31000007"]
    assert items[2].text == "Psoriasis, revised. New."


def test_truncated_gzip_keeps_records_before_the_damage(tmp_path: Path) -> None:
    records = [article(str(40000000 + i), title=f"Paper number {i} on gene G{i * 7919 % 10007}.",
                       abstract=f"<AbstractText>Finding {i * 104729 % 99991} in cohort {i}.</AbstractText>")
               for i in range(200)]
    whole = gzip.compress((HEADER + "".join(records) + FOOTER).encode())
    path = tmp_path / "pubmed25n0002.xml.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    items, problems = read_all(path)
    assert 0 < len(items) < 200
    assert [i.pmid for i in items] == [str(40000000 + i) for i in range(len(items))]
    assert len(problems) == 1 and problems[0].startswith(f"{path}: compressed data is damaged or cut short")
    assert problems[0].endswith(f"after {len(items)} records; the rest of this file is skipped")


def test_not_a_gzip_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "pubmed25n0003.xml.gz"
    path.write_bytes(b"<PubmedArticleSet>not compressed</PubmedArticleSet>")
    items, problems = read_all(path)
    assert items == [] and len(problems) == 1 and "after 0 records" in problems[0]


def test_truncated_xml_is_reported_with_its_line(tmp_path: Path) -> None:
    text = HEADER + "".join(BASELINE[:3]) + BASELINE[6]
    path = tmp_path / "pubmed25n0004.xml"
    cut = text[: text.rindex("<ArticleTitle>")]  # cut inside the last record
    path.write_text(cut, encoding="utf-8")
    items, problems = read_all(path)
    assert [i.pmid for i in items] == ["31000001", "9800002", "31000003"]
    last_line = cut.count("\n") + 1
    assert problems == [f"{path}: not well-formed XML at line {last_line} (no element found) after 3 records; "
                        "the rest of this file is skipped"]


def test_syntax_error_mid_file(tmp_path: Path) -> None:
    path = write(tmp_path / "x.xml", BASELINE[0], "<PubmedArticle><oops></PubmedArticle>\n", BASELINE[2],
                 compress=False)
    bad_line = path.read_text(encoding="utf-8").split("\n").index("<PubmedArticle><oops></PubmedArticle>") + 1
    items, problems = read_all(path)
    assert [i.pmid for i in items] == ["31000001"]
    assert problems == [f"{path}: not well-formed XML at line {bad_line} (mismatched tag) after 1 records; "
                        "the rest of this file is skipped"]


def test_not_a_pubmed_file_and_unopenable_file(tmp_path: Path) -> None:
    other = tmp_path / "other.xml"
    other.write_text("<rss><item/></rss>", encoding="utf-8")
    items, problems = read_all(other)
    assert items == [] and problems == [f"{other}: root element <rss> is not <PubmedArticleSet>; "
                                        "not a PubMed file, skipped"]
    missing = tmp_path / "missing.xml.gz"
    with pytest.raises(CorpusError, match="missing.xml.gz"):
        read_pubmed(missing, [])  # raised at the call, not at the first next()


def test_memory_stays_flat(tmp_path: Path) -> None:
    def peak(n: int) -> int:
        path = write(tmp_path / f"big{n}.xml.gz",
                     *(article(str(50000000 + i), title=f"Paper {i}.", mesh=("Psoriasis", "Humans"),
                               abstract=f"<AbstractText Label='L'>{'word ' * 60}{i}</AbstractText>")
                       for i in range(n)))
        tracemalloc.start()
        try:
            count = sum(1 for _ in read_pubmed(path, []))
            return tracemalloc.get_traced_memory()[1] if count == n else -1
        finally:
            tracemalloc.stop()

    small, large = peak(100), peak(2000)
    assert small > 0 and large > 0
    assert large < 2 * small  # without clearing each record, 20x the records hold ~20x the elements


def test_pubmed_files_order_and_errors(tmp_path: Path) -> None:
    folder = tmp_path / "pubmed"
    (folder / "updatefiles").mkdir(parents=True)
    (folder / "baseline").mkdir()
    write(folder / "updatefiles" / "pubmed25n1276.xml.gz", BASELINE[0])
    write(folder / "updatefiles" / "pubmed25n1275.xml.gz", BASELINE[0])
    write(folder / "baseline" / "pubmed25n0002.xml.gz", BASELINE[0])
    write(folder / "pubmed25n0001.xml", BASELINE[0], compress=False)
    (folder / "baseline" / "pubmed25n0002.xml.gz.md5").write_text("abc", encoding="utf-8")
    (folder / "README.txt").write_text("x", encoding="utf-8")
    assert [p.name for p in pubmed_files(folder)] == [
        "pubmed25n0001.xml", "pubmed25n0002.xml.gz", "pubmed25n1275.xml.gz", "pubmed25n1276.xml.gz"]
    one = folder / "pubmed25n0001.xml"
    assert pubmed_files(str(one)) == [one]
    with pytest.raises(CorpusError, match="no such"):
        pubmed_files(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(CorpusError, match="no PubMed"):
        pubmed_files(empty)
    with pytest.raises(CorpusError, match="expected a PubMed"):
        pubmed_files(empty / "notes.txt")


def test_is_pubmed_corpus(tmp_path: Path) -> None:
    nested = tmp_path / "corpus" / "baseline"
    nested.mkdir(parents=True)
    write(nested / "pubmed25n0001.xml.gz", BASELINE[0])
    (tmp_path / "passages.jsonl").write_text("{}\n", encoding="utf-8")
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "a.txt").write_text("x", encoding="utf-8")
    assert is_pubmed_corpus(tmp_path / "corpus")
    assert is_pubmed_corpus(nested / "pubmed25n0001.xml.gz")
    assert not is_pubmed_corpus(tmp_path / "passages.jsonl")
    assert not is_pubmed_corpus(tmp_path / "txt")
    assert not is_pubmed_corpus(tmp_path / "nowhere")

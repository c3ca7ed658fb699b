"""The evidence writer: a free-text answer composed from the ranked evidence, with no LLM (milliseconds, any machine).

It says only what the evidence says, and names where each part comes from:

* a question asking for entities gets its ranked items (:mod:`kgrag.answer.items`) in one sentence, each with its
  sources: "Genes associated with psoriasis, strongest evidence first: HLA-C (DisGeNET, GWAS Catalog), ...";
* then the sentences of the given context and the kept passages that answer the question best (the question's
  content words they share, and whether they name its entities or the first items), each cited by PMID;
* a question that asks for no entities gets those sentences first, then its entities' strongest kept edges in words.

Nothing is written that no evidence holds: with no evidence the answer says so.

Example::

    writer = EvidenceWriter(settings)
    [reply] = writer.write([question], [linked], [evidence], [items])
    reply.text
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from kgrag.answer.retriever import Linked
from kgrag.evidence.claims import split_sentences
from kgrag.generators.base import TextCallback
from kgrag.graph.schema import EDGE_TYPES
from kgrag.retrieval.linking import GENERIC_WORDS
from kgrag.settings import Settings
from kgrag.text import normalise
from kgrag.types import AnswerItem, Evidence, Question, Reply

NO_EVIDENCE = "The graph and the indexed literature hold no evidence for this question."
# An edge type -> how its relation reads after the far end's plural label ("Genes associated with psoriasis").
ITEM_PHRASES: dict[str, str] = {
    "ASSOCIATES": "associated with", "TREATS": "that treat", "PALLIATES": "that palliate",
    "CONTRAINDICATES": "contraindicated for", "CAUSES": "caused by", "PRESENTS": "presented by",
    "UPREGULATES": "upregulated with", "DOWNREGULATES": "downregulated with", "BINDS": "that bind",
    "EXPRESSES": "expressing", "INTERACTS": "interacting with", "MAPS": "mapped to", "ISA": "related by is-a to",
    "RESEMBLES": "resembling", "LOCALIZES": "affected by", "INCLUDES": "including", "PARTICIPATES": "involving",
    "REGULATES": "regulated with", "COVARIES": "covarying with",
}
# An edge type -> the sentence one edge makes ("psoriasis is associated with HLA-C").
EDGE_PHRASES: dict[str, str] = {
    "ASSOCIATES": "{s} is associated with {t}", "TREATS": "{s} treats {t}", "PALLIATES": "{s} palliates {t}",
    "CONTRAINDICATES": "{s} is contraindicated in {t}", "ISA": "{s} is a kind of {t}", "PRESENTS": "{s} presents with {t}",
    "LOCALIZES": "{s} affects {t}", "RESEMBLES": "{s} resembles {t}", "CAUSES": "{s} can cause {t}",
    "UPREGULATES": "{s} upregulates {t}", "DOWNREGULATES": "{s} downregulates {t}", "BINDS": "{s} binds {t}",
    "EXPRESSES": "{s} expresses {t}", "MAPS": "{s} maps to {t}", "INTERACTS": "{s} interacts with {t}",
    "INCLUDES": "{s} includes {t}",
}
PLURALS = {"Gene": "Genes", "Compound": "Compounds", "Disease": "Diseases", "Variant": "Variants",
           "Symptom": "Symptoms", "Anatomy": "Anatomical sites", "SideEffect": "Side effects", "Pathway": "Pathways",
           "PharmacologicClass": "Pharmacologic classes"}
LITERATURE_SENTENCES = {"items": 2, "prose": 4}
GRAPH_FACTS = 3
MAX_SENTENCE_CHARS = 400
_WORD = re.compile(r"[a-z0-9]+")


class EvidenceWriter:
    """Writes each free answer of a batch from its items, passages and edges (see the module doc)."""

    name = "evidence"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def write(self, qs: Sequence[Question], linked: Sequence[Linked], evidence: Sequence[Sequence[Evidence]],
              items: Sequence[Sequence[AnswerItem]] | None = None, on_text: TextCallback | None = None) -> list[Reply]:
        ranked = items if items is not None else [[] for _ in qs]
        replies = [Reply(text=self.compose(q, link, list(ev), list(its)), evidence=list(ev))
                   for q, link, ev, its in zip(qs, linked, evidence, ranked)]
        if on_text is not None:  # composed whole: each text handed over once
            for index, reply in enumerate(replies):
                on_text(index, reply.text)
        return replies

    def compose(self, q: Question, linked: Linked, evidence: list[Evidence], items: list[AnswerItem]) -> str:
        shown = items[: self.settings.answer_items]
        names = [e.name for e in linked.entities if e.within is None]
        parts: list[str] = []
        if shown:
            parts.append(items_sentence(shown, names, evidence))
        first_items = [i.name for i in shown[:3]]
        subjects = names + [e.mention for e in linked.entities if e.within is None]
        sentences = best_sentences(q, evidence, names + first_items, LITERATURE_SENTENCES["items" if shown else "prose"],
                                   require_names=[i.name for i in shown], subjects=subjects)
        parts.extend(sentences)
        if not shown:
            parts.extend(graph_facts(evidence, GRAPH_FACTS))
        return " ".join(parts) if parts else NO_EVIDENCE


def items_sentence(items: Sequence[AnswerItem], question_entities: Sequence[str], evidence: Sequence[Evidence]) -> str:
    """'Genes associated with psoriasis, strongest evidence first: HLA-C (DisGeNET, GWAS Catalog), ...'."""
    labels = list(dict.fromkeys(i.label for i in items))
    head = " and ".join(PLURALS.get(label, label) for label in labels)
    relation = _dominant_relation(items, evidence)
    phrase = ITEM_PHRASES.get(relation, "linked to") if relation else "named with"
    named = ", ".join(f"{i.name} ({short_sources(i.sources) or 'literature'})" for i in items)
    if not question_entities:
        return f"{head} named in the question's passages, most often first: {named}."
    return f"{head} {phrase} {' and '.join(question_entities)}, strongest evidence first: {named}."


def _dominant_relation(items: Sequence[AnswerItem], evidence: Sequence[Evidence]) -> str | None:
    """The relation (edge-type prefix) most of the items' graph evidence has; None when they come from text only."""
    counts: dict[str, int] = {}
    for item in items:
        for key in item.evidence:
            parts = key.split("|")
            if len(parts) == 3:
                prefix = parts[1].split("_")[0]
                counts[prefix] = counts.get(prefix, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else None


def short_sources(sources: Sequence[str], pmids: int = 2) -> str:
    """Databases first, then at most ``pmids`` PMIDs, then how many more ("" for no source)."""
    databases = [s for s in sources if not s.startswith("PMID:")]
    cited = [s for s in sources if s.startswith("PMID:")]
    more = len(cited) - pmids
    return ", ".join(databases + cited[:pmids]) + (f" and {more} more PMIDs" if more > 0 else "")


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(normalise(text)) if w not in GENERIC_WORDS and len(w) > 2}


def best_sentences(q: Question, evidence: Sequence[Evidence], names: Sequence[str], limit: int,
                   require_names: Sequence[str] = (), subjects: Sequence[str] = ()) -> list[str]:
    """The ``limit`` sentences of the given context and the kept passages that answer ``q`` best, each cited.

    A sentence scores the question's content words it shares (over the square root of their number), plus one for
    naming one of ``names`` (the question's entities, the first items), plus one for defining an entity of the
    question ("X is a ...") when the question asks what something is. Fragments are skipped: a sentence must begin
    with a capital letter or a digit, end with a full stop (or ? or !), and hold at least five words. With
    ``require_names``, only sentences naming one of them count; with ``subjects`` (the question's entities, by name or
    mention), a retrieved passage's sentence counts only when it names one of them (a given context, chosen by the
    user, is exempt). Ties keep the order of the passages (retrieval rank).
    """
    wanted = content_words(q.text)
    keys = [normalise(n) for n in names if n]
    required = [normalise(n) for n in require_names if n]
    about = [normalise(n) for n in subjects if n]
    defining = bool(DEFINITION_QUESTION.match(q.text))
    scored: list[tuple[float, int, str]] = []
    pools: list[tuple[str, str, bool]] = [(s, "", False) for s in split_sentences(q.context or "")]
    for ev in evidence:
        if ev.kind in ("text", "given"):
            cite = f" [{', '.join(ev.sources)}]" if ev.sources else ""
            pools.extend((s, cite, ev.kind == "text") for s in split_sentences(ev.text))
    seen: set[str] = set()
    for order, (raw, cite, retrieved) in enumerate(pools):
        sentence = SECTION_LABEL.sub("", raw).strip()
        key = normalise(sentence)
        if key in seen or not is_whole_sentence(sentence):
            continue
        seen.add(key)
        padded = f" {key} "
        if required and not any(k and f" {k} " in padded for k in required):
            continue
        if retrieved and about and not any(f" {k} " in padded for k in about):
            continue
        shared = len(wanted & content_words(sentence))
        named = any(k and f" {k} " in padded for k in keys)
        defines = defining and any(k and f" {k} is " in padded or f" {k} are " in padded for k in keys)
        score = shared / math.sqrt(max(1, len(wanted))) + float(named) + float(defines)
        if score > 0:
            scored.append((score, order, sentence + cite))
    best = sorted(scored, key=lambda s: (-s[0], s[1]))[:limit]
    return [text for _, _, text in best]


_SECTIONS = ("BACKGROUND|OBJECTIVES?|AIMS?|PURPOSE|INTRODUCTION|METHODS?|MATERIALS|RESULTS?|FINDINGS|CONCLUSIONS?|"
             "DISCUSSION|DESIGN|SETTINGS?|PATIENTS|PARTICIPANTS|INTERVENTIONS?|MEASUREMENTS|OUTCOMES?|MAIN|MEASURES|"
             "INTERPRETATION|SIGNIFICANCE|CONTEXT|IMPORTANCE|EVIDENCE|SUMMARY|RATIONALE|HYPOTHESIS|ABSTRACT")
SECTION_LABEL = re.compile(rf"^(?:(?:{_SECTIONS})(?:(?:\s+AND\s+|\s*/\s*|\s+)(?:{_SECTIONS}))*)(?::\s*|\s+(?=[A-Z]))")
"""A structured abstract's section label at a sentence's start ("BACKGROUND:", "OBJECTIVES ")."""
DEFINITION_QUESTION = re.compile(r"^\s*what\s+(is|are)\b", re.IGNORECASE)


def is_whole_sentence(sentence: str) -> bool:
    """Begins with a capital letter or digit, ends with . ? or !, five words or more, at most MAX_SENTENCE_CHARS."""
    return (bool(sentence) and (sentence[0].isupper() or sentence[0].isdigit()) and sentence.endswith((".", "?", "!"))
            and len(sentence.split()) >= 5 and len(sentence) <= MAX_SENTENCE_CHARS)


def graph_facts(evidence: Sequence[Evidence], limit: int) -> list[str]:
    """The strongest kept edges in words: 'psoriasis is associated with HLA-C (DisGeNET, GWAS Catalog).'"""
    edges = sorted((e for e in evidence if e.kind == "kg"), key=lambda e: -(e.strength or 0.0))[:limit]
    return [edge_in_words(e) for e in edges]


def edge_in_words(ev: Evidence) -> str:
    """One edge as a plain sentence, from its KG-RAG sentence's names and its type."""
    source, edge_type, target = (ev.id.split("|") + ["", "", ""])[:3]
    names = _names_from_sentence(ev.text, edge_type)
    s, t = names if names else (source, target)
    template = EDGE_PHRASES.get(edge_type.split("_")[0], "{s} is linked to {t}")
    sentence = template.format(s=s, t=t)
    return f"{sentence[0].upper()}{sentence[1:]} ({', '.join(ev.sources)})."


def _names_from_sentence(text: str, edge_type: str) -> tuple[str, str] | None:
    """The two names in 'Disease psoriasis associates Gene HLA-B and Provenance ...' (the labels and verb known)."""
    known = EDGE_TYPES.get(edge_type)
    if known is None:
        return None
    source_label, verb, target_label = known
    head, sep, _ = text.partition(" and Provenance of this association is ")
    prefix, middle = f"{source_label} ", f" {verb} {target_label} "
    if not sep or not head.startswith(prefix) or middle not in head:
        return None
    s, _, t = head[len(prefix):].partition(middle)
    return s, t

"""Entity linking: names in a question -> graph nodes.

Three steps, all batched:

1. Dictionary: every node name and synonym in the graph, normalised (:func:`kgrag.text.normalise`),
   in an Aho-Corasick automaton; the longest non-overlapping whole-word matches win. Gene symbols
   that are ordinary words (``CAT``, ``MAX``) only match where the question writes them with a
   capital letter or digit; generic words (``disease``, ``gene``) never match on their own.
   A typed cue right before a name (``gene xpc``, ``variant rs123``, ``drug X``; ``link_cues``)
   licenses it for that type: the symbol and generic-word rules are lifted for that type's nodes, and
   where the name is ambiguous, that type's nodes are the ones linked.
2. Nested ancestors (``link_nested_ancestors``): a disease named inside a longer disease mention
   (``xeroderma pigmentosum`` in ``xeroderma pigmentosum, group G``) is linked too when it is an is-a
   ancestor of the longer mention's disease within ``evidence_isa_depth`` steps (walked in memory,
   :class:`kgrag.graph.ontology.Ontology`). It shares the longer mention and carries ``within``: reported with the answer,
   neither a graph-context seed (the more specific disease's neighbourhood is fetched) nor a claim's subject.
3. Embedding fallback: when no node of the first preferred label (Disease by default) was found,
   the question's word n-grams are embedded in ONE call and compared with the embedded names of
   those nodes; the best span above ``link_embedding_threshold`` links.

Every :class:`LinkedEntity` says in ``reason`` why it was linked.

Example::

    linker = EntityLinker.from_store(store, embedder, settings)
    [entities] = linker.link(["Which genes are associated with psoriasis?"])
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ahocorasick
import numpy as np

from kgrag.encoders.embeddings import Embedder
from kgrag.graph.base import GraphStore
from kgrag.graph.ontology import Ontology
from kgrag.settings import Settings
from kgrag.text import normalise
from kgrag.types import LinkedEntity

GENERIC_WORDS = frozenset(
    """a an the of and or in on to for with by is are was be as at from not no yes which what who how does do did
    can could would should may might has have had this that these those it its their there than then also only
    any all some other such into about between disease diseases disorder disorders syndrome syndromes gene genes
    protein proteins variant variants compound compounds drug drugs treatment treats treat associated associates
    association cell cells type types given list out patients patient human humans identifier ontology
    symptom symptoms anatomy finding findings condition conditions abnormality""".split()
)
MAX_SPAN_WORDS = 6
# A word right before a name that says what the name is (normalised, lower case) -> the node label it licenses.
CUES: dict[str, str] = {
    "gene": "Gene", "genes": "Gene",
    "variant": "Variant", "variants": "Variant", "snp": "Variant", "polymorphism": "Variant",
    "drug": "Compound", "drugs": "Compound", "compound": "Compound", "compounds": "Compound",
    "medication": "Compound",
}


@dataclass(frozen=True)
class Match:
    """A dictionary match in the normalised text: character offsets in the padded text, its key, its entries."""

    start: int
    end: int
    entries: list["DictEntry"]
    key: str
    cue: str | None = None  # the cue word that licensed it, if one did

    def covers(self, other: "Match") -> bool:
        return self.start <= other.start and other.end <= self.end and (self.start, self.end) != (other.start, other.end)


@dataclass(frozen=True)
class DictEntry:
    node_id: str
    label: str
    name: str
    method: str  # "exact" (the node's name) or "synonym"


def _is_word_symbol(key: str) -> bool:
    """A key that is one alphabetic word (could be an English word, like the gene symbol CAT)."""
    return key.isalpha()


class EntityLinker:
    """Links the entities of many questions at once; see the module docstring for the method."""

    def __init__(self, entries: dict[str, list[DictEntry]], embedder: Embedder | None, settings: Settings,
                 store: GraphStore | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        # is-a walks for nested ancestors; without a store none are linked
        self.ontology = Ontology(store, settings.evidence_isa_depth) if store is not None else None
        self.label_rank = {label: i for i, label in enumerate(settings.link_labels)}
        self._entries = entries
        self._automaton = ahocorasick.Automaton()
        for key in entries:
            self._automaton.add_word(f" {key} ", key)
        if entries:
            self._automaton.make_automaton()
        self._fallback_label = settings.link_labels[0] if settings.link_labels else None
        self._fallback_names: list[DictEntry] = []
        self._fallback_matrix: np.ndarray | None = None

    @classmethod
    def from_store(cls, store: GraphStore, embedder: Embedder | None, settings: Settings) -> "EntityLinker":
        return cls(build_dictionary(store.iter_names(settings.link_labels)), embedder, settings, store=store)

    # -- dictionary ----------------------------------------------------------------------------
    def _dictionary_matches(self, question: str) -> tuple[list[Match], list[Match]]:
        """The longest non-overlapping matches, in text order; and the matches inside them that they displaced."""
        if not self._entries:
            return [], []
        norm = normalise(question)
        padded = f" {norm} "
        found: list[Match] = []
        for end, key in self._automaton.iter(padded):
            start = end - len(key) - 1  # index of the leading space
            entries = self._entries[key]
            before = padded[:start].split()
            cue_label = CUES.get(before[-1]) if self.settings.link_cues and before else None
            cued = [e for e in entries if e.label == cue_label] if cue_label else []
            if cued:
                found.append(Match(start, start + len(key) + 1, cued, key, cue=before[-1]))
                continue
            if key in GENERIC_WORDS:
                continue
            if all(e.label == "Gene" and e.method == "synonym" for e in entries) and len(entries) > 1:
                continue  # a gene synonym shared by several genes ("EPP") names none of them
            if _is_word_symbol(key) and all(e.label == "Gene" for e in entries):
                if not _written_as_symbol(question, key):
                    continue
            found.append(Match(start, start + len(key) + 1, entries, key))
        # longest first, then earliest; drop overlaps
        found.sort(key=lambda m: (-(m.end - m.start), m.start))
        chosen: list[Match] = []
        for match in found:
            if all(match.end <= c.start or match.start >= c.end for c in chosen):
                chosen.append(match)
        chosen.sort(key=lambda m: m.start)
        nested = [m for m in found if m not in chosen and any(c.covers(m) for c in chosen)]
        return chosen, nested

    def _rank(self, entry: DictEntry) -> tuple[int, int]:
        return (self.label_rank.get(entry.label, len(self.label_rank)), 0 if entry.method == "exact" else 1)

    def link(self, questions: Sequence[str], *, fallback: bool = True) -> list[list[LinkedEntity]]:
        """Linked entities per text; ``fallback=False`` skips the embedding step (for generated sentences)."""
        results: list[list[LinkedEntity]] = []
        needs_fallback: list[int] = []
        nested_jobs: list[tuple[int, LinkedEntity, Match]] = []  # (question, the longer mention's disease, inner match)
        for qi, question in enumerate(questions):
            entities: list[LinkedEntity] = []
            seen: set[str] = set()
            chosen, nested = self._dictionary_matches(question)
            for match in chosen:
                best = min(self._rank(e) for e in match.entries)
                for entry in sorted(match.entries, key=lambda e: (self._rank(e), e.node_id)):  # ties: by id, not store order
                    # the best-ranked entries, and every disease the words name (a disease's name and
                    # another's synonym: "cherubism" vs "cherubism 1", whose old name it was)
                    keep = self._rank(entry) == best or (entry.label == "Disease" and self._rank(entry)[0] == best[0])
                    if keep and entry.node_id not in seen:
                        seen.add(entry.node_id)
                        entities.append(LinkedEntity(mention=match.key, node_id=entry.node_id, label=entry.label,
                                                     name=entry.name, method=entry.method,  # type: ignore[arg-type]
                                                     reason=_reason(entry, match)))
                        if entry.label == "Disease":
                            nested_jobs.extend((qi, entities[-1], inner) for inner in nested if match.covers(inner))
            entities.sort(key=lambda e: self.label_rank.get(e.label, len(self.label_rank)))
            results.append(entities)
            if self._fallback_label and not any(e.label == self._fallback_label for e in entities):
                needs_fallback.append(qi)
        if nested_jobs and self.ontology is not None and self.settings.link_nested_ancestors:
            self._link_nested_ancestors(nested_jobs, results)
        if fallback and needs_fallback and self.embedder is not None:
            self._embedding_fallback([questions[i] for i in needs_fallback], [results[i] for i in needs_fallback])
        return results

    def _link_nested_ancestors(self, jobs: list[tuple[int, LinkedEntity, Match]],
                               results: list[list[LinkedEntity]]) -> None:
        """Link the diseases named inside a longer disease mention that are its is-a ancestors (one walk for all)."""
        assert self.ontology is not None
        ancestors = self.ontology.ancestors(sorted({outer.node_id for _, outer, _ in jobs}))
        for qi, outer, inner in jobs:
            have = {e.node_id for e in results[qi]}
            for entry in inner.entries:
                path = ancestors.get(outer.node_id, {}).get(entry.node_id)
                if entry.label != "Disease" or path is None or entry.node_id in have:
                    continue
                have.add(entry.node_id)
                results[qi].append(LinkedEntity(
                    mention=outer.mention, node_id=entry.node_id, label="Disease", name=entry.name,
                    method=entry.method, within=outer.node_id,  # type: ignore[arg-type]
                    reason=f"'{inner.key}' named inside '{outer.mention}'; {path.describe()} "
                           f"({path.depth} is-a step{'s' if path.depth != 1 else ''}): context, not a claim's subject"))

    # -- embedding fallback --------------------------------------------------------------------
    def _fallback_index(self) -> tuple[list[DictEntry], np.ndarray]:
        if self._fallback_matrix is None:
            assert self.embedder is not None
            names = {}
            for entries in self._entries.values():
                for e in entries:
                    if e.label == self._fallback_label and e.method == "exact":
                        names[e.node_id] = e
            self._fallback_names = list(names.values())
            self._fallback_matrix = self.embedder.encode([e.name for e in self._fallback_names])
        return self._fallback_names, self._fallback_matrix

    def _embedding_fallback(self, questions: list[str], targets: list[list[LinkedEntity]]) -> None:
        names, matrix = self._fallback_index()
        if not names:
            return
        spans_per_q = [candidate_spans(q) for q in questions]
        flat = [s for spans in spans_per_q for s in spans]
        if not flat:
            return
        vectors = self.embedder.encode(flat, persist=False)  # type: ignore[union-attr, call-arg]
        sims = vectors @ matrix.T
        cursor = 0
        for spans, target in zip(spans_per_q, targets):
            block = sims[cursor:cursor + len(spans)]
            cursor += len(spans)
            if not spans:
                continue
            span_i, name_i = np.unravel_index(int(np.argmax(block)), block.shape)
            score = float(block[span_i, name_i])
            if score >= self.settings.link_embedding_threshold:
                entry = names[name_i]
                target.insert(0, LinkedEntity(mention=spans[span_i], node_id=entry.node_id, label=entry.label,
                                              name=entry.name, method="embedding", score=score,
                                              reason=f"no {self._fallback_label} named; '{spans[span_i]}' is most similar "
                                                     f"to '{entry.name}' (cosine {score:.2f} >= "
                                                     f"{self.settings.link_embedding_threshold})"))


def _reason(entry: DictEntry, match: Match) -> str:
    how = f"the name of {entry.label} {entry.name}" if entry.method == "exact" else f"a synonym of {entry.label} {entry.name}"
    cue = f", licensed by the cue '{match.cue}' before it" if match.cue else ""
    return f"'{match.key}' is {how}{cue}"


def _written_as_symbol(question: str, key: str) -> bool:
    """True when the question writes ``key`` with a capital letter or digit (as a gene symbol)."""
    for match in re.finditer(re.escape(key), question, flags=re.IGNORECASE):
        surface = match.group(0)
        if any(c.isupper() or c.isdigit() for c in surface) and not surface.istitle() or surface.isupper():
            return True
    return False


def candidate_spans(question: str) -> list[str]:
    """Word n-grams (1..6 words) of the normalised question that are not made only of generic words."""
    words = normalise(question).split()
    spans = []
    for n in range(1, MAX_SPAN_WORDS + 1):
        for i in range(len(words) - n + 1):
            span = words[i:i + n]
            if all(w in GENERIC_WORDS for w in span) or (n == 1 and len(span[0]) < 4):
                continue
            spans.append(" ".join(span))
    return spans


def build_dictionary(rows: Iterable[tuple[str, str, str, list[str]]]) -> dict[str, list[DictEntry]]:
    """Normalised name/synonym -> entries, from (id, label, name, synonyms) rows."""
    entries: dict[str, list[DictEntry]] = {}
    for node_id, label, name, synonyms in rows:
        for text, method in [(name, "exact")] + [(s, "synonym") for s in synonyms or []]:
            key = normalise(text)
            if len(key) < 2 or key in GENERIC_WORDS:
                continue
            bucket = entries.setdefault(key, [])
            if not any(e.node_id == node_id for e in bucket):
                bucket.append(DictEntry(node_id, label, name, method))
    return entries

"""Which relations answer a question: decided once per question and relation type, never per edge sentence.

A question's cue words say what it asks for ("which **genes** ..." -> Gene; "**drugs** that treat" -> Compound) and
how ("**associated** with" -> association edges; "**treat**" -> treats and palliates). Its linked entities say
where it starts. :func:`asked` reads both into an :class:`Asked`; :meth:`Asked.relevance` gives an edge of a
seed's neighbourhood one of a few tiers:

====================  =====  =====================================================================
tier                  value  the edge ...
====================  =====  =====================================================================
``JOINS``             3      joins two of the question's own entities (what a true/false or a
                             "does X ... Y" question is about)
``ANSWERS``           2      reaches a node of an asked label by an asked relation (or by any
                             relation, when the question names none)
``NEAR``              1      reaches an asked label by another relation, or an asked relation
                             reaches another label
``OTHER``             0      anything else in the neighbourhood
====================  =====  =====================================================================

A question with no label or relation cue ("What is psoriasis?") ranks its whole neighbourhood as ``ANSWERS``;
within a tier the ranking orders by strength (:mod:`kgrag.graph.strength`).

Example::

    a = asked("Which genes are associated with psoriasis?", [psoriasis_entity])
    a.labels, a.relations            # ['Gene'], ['ASSOCIATES']
    a.relevance(edge, seed="DOID:8893")
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, Field

from kgrag.graph.schema import EDGE_TYPES, EdgeView
from kgrag.types import LinkedEntity

JOINS, ANSWERS, NEAR, OTHER = 3, 2, 1, 0

# A word of the question (lower case) -> the node label it asks for.
LABEL_CUES: dict[str, str] = {
    **dict.fromkeys(["gene", "genes", "protein", "proteins", "locus", "loci", "biomarker", "biomarkers", "enzyme",
                     "enzymes", "receptor", "receptors", "kinase", "kinases", "transporter", "transporters", "cytokine",
                     "cytokines"], "Gene"),
    **dict.fromkeys(["drug", "drugs", "compound", "compounds", "medication", "medications", "medicine", "medicines",
                     "treatment", "treatments", "therapy", "therapies", "therapeutics", "agent", "agents",
                     "inhibitor", "inhibitors"], "Compound"),
    **dict.fromkeys(["disease", "diseases", "disorder", "disorders", "condition", "conditions", "syndrome",
                     "syndromes", "comorbidity", "comorbidities", "cancer", "cancers", "tumor", "tumors", "tumour",
                     "tumours", "carcinoma", "carcinomas", "infection", "infections"], "Disease"),
    **dict.fromkeys(["variant", "variants", "snp", "snps", "polymorphism", "polymorphisms", "rsid", "rsids"],
                    "Variant"),
    **dict.fromkeys(["symptom", "symptoms", "sign", "signs", "manifestation", "manifestations"], "Symptom"),
    **dict.fromkeys(["tissue", "tissues", "organ", "organs", "anatomy"], "Anatomy"),
    **dict.fromkeys(["pathway", "pathways"], "Pathway"),
    **dict.fromkeys(["class", "classes"], "PharmacologicClass"),
}
SIDE_EFFECT = re.compile(r"\b(side|adverse)[ -]effects?\b")

# A stem of the question's words -> the relations (edge-type prefixes) it asks about.
RELATION_CUES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"\b(associat\w*|link\w*|relat\w*|implicat\w*|risk|susceptib\w*|predispos\w*|contribut\w*)\b"),
     ("ASSOCIATES",)),
    (re.compile(r"\b(treat\w*|therap\w*|indicat\w*|cur\w+|prescrib\w*|manag\w*|used for)\b"), ("TREATS",)),
    (re.compile(r"\b(palliat\w*|reliev\w*|relief|symptomatic)\b"), ("PALLIATES",)),
    (re.compile(r"\bcontraindicat\w*\b"), ("CONTRAINDICATES",)),
    (re.compile(r"\b(caus\w*|induc\w*)\b"), ("CAUSES", "ASSOCIATES")),
    (re.compile(r"\b(express\w*)\b"), ("EXPRESSES",)),
    (re.compile(r"\b(up-?regulat\w*|overexpress\w*|increas\w*)\b"), ("UPREGULATES",)),
    (re.compile(r"\b(down-?regulat\w*|decreas\w*|suppress\w*)\b"), ("DOWNREGULATES",)),
    (re.compile(r"\b(bind\w*|target\w*)\b"), ("BINDS",)),
    (re.compile(r"\b(interact\w*)\b"), ("INTERACTS",)),
    (re.compile(r"\b(present\w*|symptom\w*|manifest\w*)\b"), ("PRESENTS",)),
    (re.compile(r"\b(locali[sz]\w*|affect\w*)\b"), ("LOCALIZES",)),
    (re.compile(r"\b(map\w*|located|lies)\b"), ("MAPS",)),
    (re.compile(r"\b(subtype\w*|type of|kind of|form of|is a)\b"), ("ISA",)),
    (re.compile(r"\b(resembl\w*|similar)\b"), ("RESEMBLES",)),
    (re.compile(r"\b(mutat\w*)\b"), ("ASSOCIATES", "MAPS")),
)
ENTITY_QUESTION = re.compile(r"^\s*(list|name|give|enumerate|identify)\b|\bwhich\b|^\s*what\s+(is|are|was|were)\s+the\b",
                             re.IGNORECASE)
WHAT_QUESTION = re.compile(r"^\s*what\b", re.IGNORECASE)
PROSE_QUESTION = re.compile(
    r"^\s*what\s+(is|are|was|were)\s+the\s+(main\s+|primary\s+|major\s+)?(role|roles|function|functions|mechanism|"
    r"mechanisms|effect|effects|purpose|difference|differences|relationship|relation|link|association|impact|"
    r"significance|definition|aim|goal|principle|basis|rationale|importance|outcome|outcomes|prognosis|"
    r"pathophysiology|pathogenesis|etiology|aetiology|evidence|advantage|advantages|benefit|benefits)\b",
    re.IGNORECASE)
"""'What is the role of X?' and its kin ask for prose, not for entities."""
_WORD = re.compile(r"[a-z0-9]+")


class Asked(BaseModel):
    """What one question asks for: node labels, relation types (edge-type prefixes) and its own entities."""

    labels: list[str] = Field(default_factory=list, description="Node labels asked for, in the question's order")
    relations: list[str] = Field(default_factory=list, description="Edge-type prefixes asked about (ASSOCIATES, ...)")
    entity_question: bool = Field(default=False, description="Asks for entities: 'which' anywhere, 'list/name ...', "
                                  "'what is the ...', or 'what' with an asked label ('What genes ...'); not 'What is X?'")
    entity_ids: list[str] = Field(default_factory=list, description="The question's own linked nodes")

    def relation_asked(self, edge_type: str) -> bool:
        return not self.relations or edge_type.split("_")[0] in self.relations

    def relevance(self, edge: EdgeView, seed: str) -> int:
        """The edge's tier for a question whose entity ``seed`` it was fetched for (the far end is the other node)."""
        far = edge.target if edge.source.id == seed else edge.source
        if far.id in self.entity_ids and far.id != seed:
            return JOINS
        label_ok = not self.labels or far.label in self.labels
        relation_ok = self.relation_asked(edge.type)
        if label_ok and relation_ok:
            return ANSWERS
        if label_ok or relation_ok:
            return NEAR
        return OTHER

    def describe(self) -> str:
        """One trace line: what the ranking took the question to ask."""
        labels = ", ".join(self.labels) or "any label"
        relations = ", ".join(self.relations) or "any relation"
        return f"ranking: asks for {labels} by {relations}" + (" (entity question)" if self.entity_question else "")


def asked(question: str, entities: Sequence[LinkedEntity]) -> Asked:
    """What ``question`` asks for, from its cue words; words inside a linked entity's mention are not cues
    ("Parkinson disease" names a disease, it does not ask for diseases)."""
    text = question.lower()
    for entity in entities:
        if entity.mention:
            text = re.sub(re.escape(entity.mention.lower()), " ", text)
    labels: list[str] = []
    if SIDE_EFFECT.search(text):
        labels.append("SideEffect")
        text = SIDE_EFFECT.sub(" ", text)
    for word in _WORD.findall(text):
        label = LABEL_CUES.get(word)
        if label is not None and label not in labels:
            labels.append(label)
    relations: list[str] = []
    for pattern, prefixes in RELATION_CUES:
        if pattern.search(text):
            relations.extend(p for p in prefixes if p not in relations)
    known = {t.split("_")[0] for t in EDGE_TYPES}
    relations = [r for r in relations if r in known]
    # "Which ...", "... of which cancer?", "What is the main target of X?" ask for entities; another "What ..." only
    # when it names their kind ("What genes ..."), not "What is X?" (a definition)
    entity_question = ((bool(ENTITY_QUESTION.search(question)) and not PROSE_QUESTION.match(question))
                       or (bool(WHAT_QUESTION.match(question)) and bool(labels)))
    return Asked(labels=labels, relations=relations, entity_question=entity_question,
                 entity_ids=[e.node_id for e in entities])

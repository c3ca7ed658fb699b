"""The evidence behind an answer as a small graph: linked entities, options, the edges that joined them.

:func:`build_subgraph` turns an :class:`~kgrag.types.Answer` into an :class:`EvidenceSubgraph`: the question's
linked entities and its options (the chosen one marked, the gold one too when given), the graph edges of the
evidence with their type, sources and evidence properties, the passages that name an entity or option, and
the claim verdicts of a free-text answer. Each edge has a role saying why it is there:

* ``deciding``: the evidence chose the answer and this edge is its support, as the selector recorded it in
  ``Answer.decision.evidence`` (an edge joining the chosen option to a question entity; for a true/false
  statement, an edge joining the statement's entities; inferred support with its steps);
* ``option``: an edge joining an option to a question entity that did not decide alone (a tie the LLM
  broke, or a selection by the LLM);
* ``context``: the rest of the graph context; ``mention``: a passage naming an entity or option;
  ``claim``: an entity pair of a free-text answer with its verdict (graph, corpus, unsupported).

A picture stays readable up to about 60 nodes, so the subgraph keeps the question entities and options, then
edges in the order deciding, option, claim, mention (passages), context (the question entities taking turns,
most similar first), while the node cap
allows; ``edges_left_out`` says how many it left out. Node names and labels are read back from each edge's
KG-RAG sentence (checked by writing the sentence again with :func:`kgrag.graph.schema.edge_sentence`), and what
decided from ``Answer.decision`` (never from the trace, which is for people), so nothing beyond what an Answer
already carries is needed.

Example::

    result = pipeline.answer("Which Gene is associated with psoriasis and MDS?", options=["NOD2", "HLA-B"])
    graph = build_subgraph(result, options=["NOD2", "HLA-B"])
    [e for e in graph.edges if e.role == "deciding"]

Drawing it is :mod:`kgrag.explain.picture`'s (``write_picture(graph, "evidence.png")``, ``show(graph)`` in a notebook), which
imports this module, never the other way round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from kgrag.graph.schema import EDGE_TYPES, EdgeView, NodeRef, edge_sentence
from kgrag.text import normalise
from kgrag.types import TASK_OPTIONS, option_key

if TYPE_CHECKING:
    from kgrag.types import Answer, Evidence

NodeRole = Literal["entity", "option", "neighbour", "passage", "claimed"]
EdgeRole = Literal["deciding", "option", "claim", "context", "mention"]
DEFAULT_MAX_NODES = 60
_ROLE_RANK: dict[str, int] = {"deciding": 0, "option": 1, "claim": 2, "mention": 3, "context": 4}
_PROVENANCE = " and Provenance of this association is "
_INFERRED = " Inferred: "  # kgrag.evidence.inference.Inferred.evidence writes the edge's sentence, then this and the path
_INFERRED_KINDS = ("ontology", "class")


class SubgraphNode(BaseModel):
    """One node of the picture: a graph node (entity, option, neighbour), a passage, or a claimed name."""

    id: str = Field(description="Graph node id (DOID:8893), passage id, or 'option:<text>' for an unlinked option")
    name: str
    label: str = Field(description="Node label (Disease, Gene, ...), 'Passage', 'Option' or 'Mention'")
    role: NodeRole
    option: str | None = Field(default=None, description="The option this node stands for, if any")
    chosen: bool = False
    gold: bool = False
    mention: str | None = Field(default=None, description="Question entities: the text that was linked")
    link_method: str | None = None
    sources: list[str] = Field(default_factory=list, description="Passages: their PMIDs or source")
    text: str | None = Field(default=None, description="Passages: the text (first 300 characters)")


class SubgraphEdge(BaseModel):
    """One edge of the picture, with its provenance and why it is there."""

    source: str
    target: str
    type: str = Field(description="Edge type (ASSOCIATES_DaG, ...), MENTIONS for passages, CLAIM_<verdict> for claims")
    id: str = Field(description="Evidence id: the edge key source|type|target, or the passage id")
    role: EdgeRole
    sources: list[str] = Field(default_factory=list)
    properties: dict[str, Any] = Field(default_factory=dict)
    score: float | None = Field(default=None, description="Similarity to the question (1.0: attached as support)")
    option: str | None = None
    text: str = Field(default="", description="The KG-RAG sentence, passage start or claim sentence")
    support: str | None = Field(default=None, description="For evidence that decided: direct, or how it was inferred "
                                "(ontology, class); an inferred edge's is-a or membership steps are drawn with it")


class EvidenceSubgraph(BaseModel):
    """An answer's evidence as a small graph, with the answer, the gold answer and what decided.

    ``write(path)`` renders PNG, SVG or a self-contained HTML file (suffix decides); in a notebook the
    object shows itself as a PNG.
    """

    question: str
    question_id: str | None = None
    task: str = "free"
    options: list[str] = Field(default_factory=list)
    choice: str | None = None
    answer_text: str = ""
    gold: str | None = None
    option_scores: dict[str, float] | None = Field(default=None, description="The LLM's option scores, when it chose")
    abstained: bool = False
    decided_by: str = Field(description="evidence, llm among the options the evidence left tied, llm, abstained, "
                            "generated text, or not recorded (an Answer without a decision)")
    decision: str = Field(default="", description="The evidence check's reason (Answer.decision.reason)")
    gate: list[str] = Field(default_factory=list, description="The gate's decisions, one line each")
    nodes: list[SubgraphNode] = Field(default_factory=list)
    edges: list[SubgraphEdge] = Field(default_factory=list)
    max_nodes: int = DEFAULT_MAX_NODES
    edges_total: int = Field(default=0, description="Edges the evidence gave before the node cap")
    edges_left_out: int = Field(default=0, description="Of those, left out to keep the picture readable")
    pruned: int = Field(default=0, description="Candidates pruning removed before the answer (Answer.dropped_evidence)")
    passages_unlinked: int = Field(default=0, description="Passages naming no entity or option (not drawn)")
    names_from: str = Field(default="evidence sentences", description="Where node names came from")

    def __repr__(self) -> str:
        """Short (notebooks print it beside the picture)."""
        deciding = sum(e.role == "deciding" for e in self.edges)
        return (f"EvidenceSubgraph({_clip(self.question, 60)!r}, choice={self.choice!r}, gold={self.gold!r}, "
                f"decided by {self.decided_by}: {len(self.nodes)} nodes, {len(self.edges)} edges ({deciding} deciding), "
                f"{self.edges_left_out} left out)")

    __str__ = __repr__

    @property
    def correct(self) -> bool | None:
        """Whether the choice is the gold answer (None without a gold answer or a choice)."""
        if self.gold is None or self.choice is None:
            return None
        return option_key(self.choice) == option_key(self.gold)

    def node(self, node_id: str) -> SubgraphNode:
        """The node with this id (KeyError if absent)."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def marked(self, *, choice: str | None, gold: str | None) -> "EvidenceSubgraph":
        """A copy with ``choice`` as the chosen option and ``gold`` as the gold one (eval reports: the option the
        answer text was parsed to may differ from the choice the pipeline gave)."""
        def same(a: str | None, b: str | None) -> bool:
            return a is not None and b is not None and option_key(a) == option_key(b)

        nodes = [n.model_copy(update={"chosen": same(n.option, choice), "gold": same(n.option, gold)}) for n in self.nodes]
        return self.model_copy(update={"choice": choice, "gold": gold, "nodes": nodes})



def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- reading nodes back from evidence ---------------------------------------------------------------


def _split_key(key: str) -> tuple[str, str, str] | None:
    """``source|type|target`` -> its parts (ids may not hold '|'; None when the key is not an edge key)."""
    parts = key.split("|")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def edge_endpoints(ev: "Evidence") -> tuple[NodeRef, str, NodeRef] | None:
    """The two nodes and the type of a graph edge, read back from its KG-RAG sentence and key.

    Each way of splitting the sentence is checked by writing it again with :func:`edge_sentence` (and, for a
    known edge type, against its node labels); the first that gives the same sentence wins. Returns None when
    the evidence is not an edge sentence; names fall back to ids when no split round-trips (a hand-made
    Evidence)."""
    parts = _split_key(ev.id)
    if ev.kind != "kg" or parts is None:
        return None
    source_id, edge_type, target_id = parts
    fallback = (NodeRef(id=source_id, label="Node", name=source_id), edge_type,
                NodeRef(id=target_id, label="Node", name=target_id))
    text = ev.text.split(_INFERRED)[0] if ev.support in _INFERRED_KINDS else ev.text  # the edge's own sentence
    suffix = _PROVENANCE + ", ".join(ev.sources) + "."
    if not text.endswith(suffix):
        return fallback
    body = text[: -len(suffix)]
    source_label, _, rest = body.partition(" ")
    known_source, verb, known_target = EDGE_TYPES.get(edge_type, (None, edge_type.split("_")[0].lower(), None))
    marker = f" {verb} "
    start = rest.find(marker)
    while start >= 0:
        source_name = rest[:start]
        target_label, _, target_name = rest[start + len(marker):].partition(" ")
        source = NodeRef(id=source_id, label=source_label, name=source_name)
        target = NodeRef(id=target_id, label=target_label, name=target_name)
        view = EdgeView(key=ev.id, type=edge_type, source=source, target=target, sources=list(ev.sources))
        labels_fit = known_source in (None, source_label) and known_target in (None, target_label)
        if source_name and target_name and labels_fit and edge_sentence(view) == text:
            return source, edge_type, target
        start = rest.find(marker, start + 1)
    return fallback


# --- what decided ------------------------------------------------------------------------------------


_DECIDED_BY = {"evidence": "evidence", "llm-tied": "llm among the options the evidence left tied", "llm": "llm",
               "abstained": "abstained"}


def _decision(answer: "Answer", options: list[str]) -> tuple[str, str]:
    """(decided_by, the evidence check's reason) from the Answer's :class:`~kgrag.types.Decision`."""
    reason = answer.decision.reason if answer.decision is not None else ""
    if answer.abstained:
        return "abstained", reason
    if not options:
        return "generated text", reason
    if answer.decision is None:
        return "not recorded", reason
    return _DECIDED_BY[answer.decision.by], reason


def _gate_lines(answer: "Answer") -> list[str]:
    lines = [f"gate stage {g.stage}: {'retrieve' if g.retrieve else 'no retrieval'} ({g.reason})" for g in answer.gate]
    if not lines:
        mode = answer.settings.get("gate_mode") or "unknown"
        retrieved = answer.usage.retrievals > 0
        lines.append(f"gate: mode {mode}, {'retrieved' if retrieved else 'no retrieval'}")
    return lines


# --- building ----------------------------------------------------------------------------------------


class _Builder:
    """Collects nodes and candidate edges (all of them), then keeps edges under the node cap."""

    def __init__(self, answer: "Answer", options: list[str], gold: str | None) -> None:
        self.answer = answer
        self.options = options
        self.gold = gold
        self.nodes: dict[str, SubgraphNode] = {}
        self.edges: list[SubgraphEdge] = []
        self.entity_ids = {e.node_id for e in answer.entities}
        decision = answer.decision
        # the evidence that decided the choice, as the selector recorded it (only when the evidence chose)
        self.deciding = set(decision.evidence) if decision is not None and decision.by == "evidence" else set()

    def _is(self, option: str | None, other: str | None) -> bool:
        return option is not None and other is not None and option_key(option) == option_key(other)

    def add_entities(self) -> None:
        for e in self.answer.entities:
            if e.node_id not in self.nodes:
                self.nodes[e.node_id] = SubgraphNode(id=e.node_id, name=e.name, label=e.label, role="entity",
                                                     mention=e.mention, link_method=e.method)

    def add_node(self, ref: NodeRef, option: str | None = None) -> None:
        """A graph node; an option's node becomes an option node (also when it was first seen as a neighbour)."""
        node = self.nodes.get(ref.id)
        if node is None:
            node = SubgraphNode(id=ref.id, name=ref.name, label=ref.label, role="neighbour")
            self.nodes[ref.id] = node
        elif node.label == "Node" and ref.label != "Node":
            node.name, node.label = ref.name, ref.label
        if option is not None and node.role != "entity":
            node.role, node.option = "option", option
            node.chosen = self._is(option, self.answer.choice)
            node.gold = self._is(option, self.gold)

    def add_graph_edges(self) -> None:
        for ev in self.answer.evidence:
            if ev.support in _INFERRED_KINDS:
                self._add_inferred(ev)
                continue
            ends = edge_endpoints(ev)
            if ends is None:
                continue
            source, edge_type, target = ends
            option_node = None
            if ev.option is not None:
                option_node = target.id if source.id in self.entity_ids else source.id
            self.add_node(source, ev.option if option_node == source.id else None)
            self.add_node(target, ev.option if option_node == target.id else None)
            role: EdgeRole = "deciding" if ev.id in self.deciding else ("option" if ev.option is not None else "context")
            self.edges.append(SubgraphEdge(source=source.id, target=target.id, type=edge_type, id=ev.id, role=role,
                                           sources=list(ev.sources), properties=dict(ev.properties), score=ev.score,
                                           option=ev.option, text=ev.text))

    def _add_inferred(self, ev: "Evidence") -> None:
        """Inferred support: its edge (when it has one) and each is-a or membership step of its path, one role."""
        steps = [parts for parts in (_split_key(k) for k in ev.path) if parts is not None]
        if not steps:
            return
        role: EdgeRole = "deciding" if ev.id in self.deciding else ("option" if ev.option else "context")
        ends = edge_endpoints(ev)
        names: dict[str, NodeRef] = {}
        if ends is not None:
            names = {ends[0].id: ends[0], ends[2].id: ends[2]}
        # the stand-in (subtype, class member) is the supporting edge's end that a step also touches
        touched = {node for src, _, tgt in steps[1:] for node in (src, tgt)}
        for k, (source_id, edge_type, target_id) in enumerate(steps):
            option_end = None
            if k == 0 and ends is not None and ev.option is not None:
                option_end = target_id if source_id in touched else source_id
            for node_id in (source_id, target_id):
                ref = names.get(node_id) or NodeRef(id=node_id, label="Node", name=node_id)
                self.add_node(ref, ev.option if node_id == option_end else None)
            self.edges.append(SubgraphEdge(source=source_id, target=target_id, type=edge_type, id=ev.path[k], role=role,
                                           sources=list(ev.sources) if k == 0 else [], score=ev.score, option=ev.option,
                                           text=ev.text, support=ev.support,
                                           properties=dict(ev.properties) if k == 0 else {}))

    def add_options(self) -> None:
        """Options of an MCQ that no edge reached still appear (unlinked); fixed answers (True/False) do not."""
        if self.answer.task in TASK_OPTIONS:
            return
        present = {option_key(n.option) for n in self.nodes.values() if n.option}
        for option in self.options:
            if option_key(option) not in present:
                self.nodes[f"option:{option}"] = SubgraphNode(
                    id=f"option:{option}", name=option, label="Option", role="option", option=option,
                    chosen=self._is(option, self.answer.choice), gold=self._is(option, self.gold))

    def add_passages(self) -> int:
        """Passages that name a question entity or an option, joined to what they name; returns those naming none."""
        named = [(n.id, f" {normalise(n.name)} ") for n in self.nodes.values() if n.role in ("entity", "option")]
        unlinked = 0
        for ev in self.answer.evidence:
            if ev.kind != "text":
                continue
            text = f" {normalise(ev.text)} "
            hits = [node_id for node_id, name in named if name.strip() and name in text]
            if not hits:
                unlinked += 1
                continue
            pid = f"passage:{ev.id}"
            self.nodes[pid] = SubgraphNode(id=pid, name=", ".join(ev.sources) or ev.id, label="Passage", role="passage",
                                           sources=list(ev.sources), text=ev.text[:300])
            for node_id in hits:
                self.edges.append(SubgraphEdge(source=pid, target=node_id, type="MENTIONS", id=ev.id, role="mention",
                                               sources=list(ev.sources), score=ev.score, text=ev.text[:300]))
        return unlinked

    def add_claims(self) -> None:
        """Free-text claim verdicts between named nodes (a name not in the graph becomes a 'claimed' node)."""
        by_name = {normalise(n.name): n.id for n in self.nodes.values() if n.role != "passage"}
        for claim in self.answer.claims:
            ends = []
            for name in (claim.head, claim.tail):
                node_id = by_name.get(normalise(name))
                if node_id is None:
                    node_id = f"claimed:{name}"
                    self.nodes.setdefault(node_id, SubgraphNode(id=node_id, name=name, label="Mention", role="claimed"))
                    by_name[normalise(name)] = node_id
                ends.append(node_id)
            note = f" ({claim.note})" if claim.note else ""
            count = f"; co-occurrence {claim.cooccurrence}" if claim.cooccurrence is not None else ""
            self.edges.append(SubgraphEdge(source=ends[0], target=ends[1], type=f"CLAIM_{claim.verdict}",
                                           id=f"claim:{claim.head}|{claim.tail}", role="claim", sources=list(claim.sources),
                                           text=f"{claim.sentence}{note}{count}"))

    def keep(self, max_nodes: int) -> tuple[list[SubgraphNode], list[SubgraphEdge], int]:
        """Entities, options and deciding edges always; then edges by role while nodes fit. Within a role the
        question entities take turns (each one's most similar edge, then each one's second, ...), so one
        entity with a large neighbourhood does not crowd out the others."""
        entity_order = {e.node_id: k for k, e in enumerate(self.answer.entities)}
        turn: dict[tuple[str, int], int] = {}
        rank: dict[int, int] = {}
        by_score = sorted(range(len(self.edges)), key=lambda i: (-(self.edges[i].score or 0.0), i))
        for i in by_score:
            edge = self.edges[i]
            group = min((entity_order[n] for n in (edge.source, edge.target) if n in entity_order), default=-1)
            rank[i] = turn.get((edge.role, group), 0)
            turn[(edge.role, group)] = rank[i] + 1
        order = sorted(range(len(self.edges)), key=lambda i: (_ROLE_RANK[self.edges[i].role], rank[i],
                                                                -(self.edges[i].score or 0.0), i))
        kept_nodes = [nid for nid, n in self.nodes.items() if n.role in ("entity", "option")]
        have = set(kept_nodes)
        kept_edges: list[SubgraphEdge] = []
        seen: set[tuple[str, str, str]] = set()
        left_out = 0
        for i in order:
            edge = self.edges[i]
            key = (edge.source, edge.target, edge.id)
            if key in seen:
                continue
            seen.add(key)
            new = [n for n in dict.fromkeys((edge.source, edge.target)) if n not in have]
            if edge.role != "deciding" and len(have) + len(new) > max_nodes:
                left_out += 1
                continue
            for n in new:
                have.add(n)
                kept_nodes.append(n)
            kept_edges.append(edge)
        return [self.nodes[n] for n in kept_nodes], kept_edges, left_out


def build_subgraph(answer: "Answer", *, options: list[str] | None = None, gold: str | None = None,
                   max_nodes: int = DEFAULT_MAX_NODES) -> EvidenceSubgraph:
    """The evidence of ``answer`` as an :class:`EvidenceSubgraph` of at most about ``max_nodes`` nodes.

    ``options``: the question's options (an Answer keeps only those it scored or that evidence joined; pass
    them to show every option). ``gold``: the right answer, marked when given (eval reports)."""
    if max_nodes < 2:
        raise ValueError(f"max_nodes must be at least 2, got {max_nodes}")
    if options is None:
        found = list(answer.option_scores or {}) + [e.option for e in answer.evidence if e.option]
        found += [answer.choice] if answer.choice and answer.task == "mcq" else []
        options = list(TASK_OPTIONS.get(answer.task, [])) or list(dict.fromkeys(found))
    decided_by, reason = _decision(answer, options)
    builder = _Builder(answer, list(options), gold)
    builder.add_entities()
    builder.add_graph_edges()
    builder.add_options()
    unlinked = builder.add_passages()
    builder.add_claims()
    nodes, edges, left_out = builder.keep(max_nodes)
    unique_total = len({(e.source, e.target, e.id) for e in builder.edges})
    return EvidenceSubgraph(
        question=answer.question, question_id=answer.question_id, task=answer.task, options=list(options),
        choice=answer.choice, answer_text=answer.text, gold=gold, option_scores=answer.option_scores,
        abstained=answer.abstained,
        decided_by=decided_by, decision=reason, gate=_gate_lines(answer), nodes=nodes, edges=edges,
        max_nodes=max_nodes, edges_total=unique_total, edges_left_out=left_out, pruned=answer.dropped_evidence,
        passages_unlinked=unlinked)

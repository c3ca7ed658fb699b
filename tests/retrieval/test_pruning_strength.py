"""ranking=strength: relevance tier, then strength; the budget lets each entity keep its share."""

from __future__ import annotations

import numpy as np

from kgrag.graph.schema import EdgeView, NodeRef
from kgrag.retrieval.graph_context import Candidate
from kgrag.retrieval.pruning import prune_by_strength
from kgrag.retrieval.relevance import asked
from kgrag.settings import Settings
from kgrag.types import Evidence, LinkedEntity

PSO = LinkedEntity(mention="psoriasis", node_id="D:pso", label="Disease", name="psoriasis", method="exact")
MDS = LinkedEntity(mention="myelodysplastic syndrome", node_id="D:mds", label="Disease",
                   name="myelodysplastic syndrome", method="exact")


def gene_edge(disease: str, gene: str, strength: float, edge_type: str = "ASSOCIATES_DaG") -> Candidate:
    view = EdgeView(key=f"{disease}|{edge_type}|G:{gene}", type=edge_type,
                    source=NodeRef(id=disease, label="Disease", name=disease.split(":")[1]),
                    target=NodeRef(id=f"G:{gene}", label="Gene", name=gene), sources=["DisGeNET"],
                    properties={"strength": strength})
    return Candidate(group=disease, edge=view)


def settings(**update) -> Settings:
    return Settings(**update)


def test_strong_relevant_edges_come_first_and_no_edge_is_embedded():
    cands = [gene_edge("D:pso", f"WEAK{i}", 0.2) for i in range(20)] + [gene_edge("D:pso", "IL23R", 0.9),
             gene_edge("D:pso", "UPREG", 0.99, "UPREGULATES_DuG")]
    zeros = np.zeros((len(cands), 4), dtype=np.float32)  # graph rows are never read
    result = prune_by_strength(cands, asked("Which genes are associated with psoriasis?", [PSO]), zeros,
                               settings(context_budget_tokens=0))
    names = [e.text.split(" Gene ")[1].split(" and ")[0] for e in result.evidence]
    assert names[0] == "IL23R"  # the asked relation, strongest
    assert names.index("UPREG") > names.index("WEAK19")  # another relation to an asked label: a lower tier
    assert result.evidence[0].strength == 0.9 and result.evidence[0].score == 2.9


def test_every_entity_keeps_its_share_of_the_budget():
    many = [gene_edge("D:pso", f"G{i}", 0.9) for i in range(200)]
    few = [gene_edge("D:mds", "HLA-B", 0.3), gene_edge("D:mds", "TET2", 0.2)]
    cands = many + few
    question = asked("Which genes are associated with psoriasis and myelodysplastic syndrome?", [PSO, MDS])
    result = prune_by_strength(cands, question, np.zeros((len(cands), 4), dtype=np.float32),
                               settings(context_budget_tokens=400))
    kept = {e.id for e in result.evidence}
    assert {"D:mds|ASSOCIATES_DaG|G:HLA-B", "D:mds|ASSOCIATES_DaG|G:TET2"} <= kept  # psoriasis's 200 do not crowd them out
    assert result.budget_cut > 0 and result.tokens <= 400


def test_passages_keep_their_retrieval_order_and_near_duplicates_go():
    passages = [Candidate(group="text", evidence=Evidence(kind="text", text=t, score=s, id=f"p{i}", sources=["PMID:1"]))
                for i, (t, s) in enumerate([("First passage.", 0.9), ("first passage.", 0.8), ("Other one.", 0.7)])]
    vectors = np.eye(3, dtype=np.float32)
    result = prune_by_strength(passages, asked("What is psoriasis?", [PSO]), vectors, settings())
    assert [e.id for e in result.evidence] == ["p0", "p2"] and result.near_duplicates == 1

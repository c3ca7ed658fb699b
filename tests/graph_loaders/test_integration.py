"""The whole public graph (integration: needs the real data; bounded to a few minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph_loaders.build import build_graph
from graph_loaders.coverage import coverage
from kgrag.graph import open_graph_store
from kgrag.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_full_build_and_benchmark_coverage(shared_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("KGRAG_GRAPH_URI", "KGRAG_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    settings = load_settings(sources_dir=shared_data_dir, home=tmp_path, graph_batch_size=50_000)
    with open_graph_store(settings) as store:
        report = build_graph(settings, store, progress=False)
        tf = coverage(settings, store, "biomixqa-tf")
        mcq = coverage(settings, store, "biomixqa-mcq")
    assert report.node_counts["Disease"] > 20_000 and report.node_counts["Gene"] > 50_000
    assert report.edge_counts["ASSOCIATES_DaG"] > 60_000 and report.edge_counts["ISA_DiD"] > 30_000
    assert report.edge_counts["ASSOCIATES_VaP"] > 5_000 and report.edge_counts["TREATS_CtD"] > 3_000
    assert report.dangling_edges == 0
    assert report.malformed_total < 1_000  # empty p-values in the GWAS dump, a few others; all reported
    assert tf.rate >= 0.85, tf.patterns
    assert mcq.rate >= 0.40, mcq.patterns

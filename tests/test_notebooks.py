"""The notebooks run top to bottom (nbclient, the venv's python3 kernel) and show their tables and plots.

Each notebook builds its own small graph from tests/fixtures/kg_sources into the embedded store in a
scratch directory. The kernel gets one BLAS/OpenMP thread: on shared CPUs, torch's default of one
thread per core makes SmolLM2 many times slower when the cores are busy.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.kgrag_env import use_kgrag_env

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CELL_TIMEOUT_S = 600

# notebook -> (tables it must show, plots it must show, texts that must appear in its outputs)
EXPECTED: dict[str, tuple[int, int, list[str]]] = {
    "01_explore_graph.ipynb": (5, 2, ["ASSOCIATES_DaG", "psoriasis", "HLA-B", "Disease Ontology"]),
    "02_answer_with_provenance.ipynb": (3, 1, ["PMID:", "DOID:8893|ASSOCIATES_DaG|NCBIGene:3106", "kept:", "dropped:"]),
    "03_gate.ipynb": (4, 2, ["never", "always", "gated", "rarest entity", "cooccur:"]),
    # the kg run put the Marfan syndrome edge of the fixture graph into that row's context
    "04_eval_report.ipynb": (4, 2, ["no-rag", "accuracy", "not-rule", "new rows: 0", "DOID:14323|ISA_DiD|DOID:4"]),
}


def _outputs(nb) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def _text(out: dict) -> str:
    if out.get("output_type") == "stream":
        return out.get("text", "")
    data = out.get("data", {})
    return "\n".join(str(data[k]) for k in ("text/html", "text/markdown", "text/plain") if k in data)


def test_every_notebook_is_checked():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED)


def test_notebooks_are_stored_without_outputs():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert not _outputs(nb), f"{path.name} is committed with outputs; clear them"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_and_shows_tables_and_plots(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    use_kgrag_env(monkeypatch)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(key, "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's scratch home lands here and is cleaned up
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()

    outputs = _outputs(nb)
    errors = [out for out in outputs if out.get("output_type") == "error"]
    assert not errors
    tables = [out for out in outputs if re.search(r"<table\b", out.get("data", {}).get("text/html", ""))]
    plots = [out for out in outputs if out.get("data", {}).get("image/png")]
    want_tables, want_plots, want_texts = EXPECTED[name]
    assert len(tables) >= want_tables, f"{name}: {len(tables)} tables, expected at least {want_tables}"
    assert len(plots) >= want_plots, f"{name}: {len(plots)} PNG plots, expected at least {want_plots}"
    for out in plots:
        assert out["data"]["image/png"].strip().startswith("iVBOR")  # base64 of the PNG signature
    shown = "\n".join(_text(out) for out in outputs)
    missing = [text for text in want_texts if text not in shown]
    assert not missing, f"{name}: outputs lack {missing}"
    assert not list(NOTEBOOKS.glob("*.lbug*")), "a notebook wrote its graph into the repository"

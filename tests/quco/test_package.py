"""quco is the gate and the corpus statistics only: it knows nothing of kgrag's answer path.

It may share kgrag's low-level parts (settings, types, errors, text normalisation, artefact publishing and
corpus reading); the answer path (pipeline, retrieval, prompts, generators, writers, evidence) imports quco,
never the other way round.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

QUCO = Path(__file__).resolve().parents[2] / "quco"
SHARED = ("kgrag", "kgrag.settings", "kgrag.types", "kgrag.errors", "kgrag.text", "kgrag.indexes",
          "kgrag.artefacts", "kgrag.indexes.corpus", "kgrag.sources")


def _kgrag_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "kgrag" or n.startswith("kgrag.")}


def test_quco_imports_only_kgrags_shared_low_level_parts():
    found = {f"{path.relative_to(QUCO.parent)}: {name}" for path in sorted(QUCO.rglob("*.py"))
             for name in _kgrag_imports(path) if name not in SHARED}
    assert not found, f"quco imports kgrag beyond its shared low-level parts: {sorted(found)}"


def test_importing_quco_loads_nothing_of_the_answer_path():
    code = ("import sys, quco, quco.gate, quco.stats, quco.index_builder, quco.tokenizer\n"
            "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('kgrag'))))")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                            cwd=QUCO.parent).stdout.split()
    assert set(loaded) <= set(SHARED), f"importing quco loads {sorted(set(loaded) - set(SHARED))}"

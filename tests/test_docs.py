"""The documentation's examples run: every ```python block whose first line is ``# doctest: run``.

Blocks of one page run in order in one namespace (a page reads like a short notebook), in a fresh
temporary directory with ``KGRAG_HOME`` pointing into it and no other ``KGRAG_*`` variable set.
SmolLM2 is loaded once per session (the ``smollm`` fixture) rather than once per page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.kgrag_env import use_kgrag_env

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
MARKER = "# doctest: run"
INTERFACE_PAGES = ["graph_store", "text_index", "generators", "embeddings", "corpus_stats", "langchain", "settings"]
LLM_WORDS = ("open_generator", "Pipeline.from_settings", "TransformersGenerator", "answer(")
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """SmolLM2 on one thread: on shared, busy CPUs torch's thread per core runs it ~10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def runnable_blocks(markdown: str) -> list[str]:
    """The ```python blocks of a Markdown text whose first line is the marker, in order."""
    return [block for block in _BLOCK.findall(markdown) if block.lstrip().startswith(MARKER)]


def _pages() -> list[Path]:
    pages = sorted(DOCS.glob("*.md"))
    readme = REPO / "README.md"
    return pages + ([readme] if readme.is_file() else [])


def _page_id(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_block_extraction_takes_only_marked_python_blocks():
    text = (
        "intro\n```python\n# doctest: run\nx = 1\n```\n"
        "```python\nnot_run()\n```\n"
        "```bash\n# doctest: run\nrm -rf /\n```\n"
        "```python\n\n# doctest: run\ny = x + 1\n```\n"
    )
    assert runnable_blocks(text) == ["# doctest: run\nx = 1\n", "\n# doctest: run\ny = x + 1\n"]


@pytest.mark.parametrize("name", INTERFACE_PAGES)
def test_every_interface_has_a_page_with_a_runnable_example(name):
    page = DOCS / f"{name}.md"
    assert page.is_file(), f"docs/{name}.md is missing"
    assert runnable_blocks(page.read_text()), f"docs/{name}.md has no ```python block marked '{MARKER}'"


def test_settings_page_names_every_setting_and_its_variable():
    from kgrag.settings import ENV_PREFIX, Settings

    text = (DOCS / "settings.md").read_text()
    missing = [name for name in Settings.model_fields
               if f"`{name}`" not in text or f"`{ENV_PREFIX}{name.upper()}`" not in text]
    assert not missing, f"docs/settings.md does not document: {missing}"


@pytest.fixture()
def docs_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    use_kgrag_env(monkeypatch)
    monkeypatch.setenv("KGRAG_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    page = getattr(request.node, "callspec", None) and request.node.callspec.params.get("page")
    code = "".join(runnable_blocks(page.read_text())) if page else ""
    if not any(word in code for word in LLM_WORDS):
        return tmp_path
    smollm = request.getfixturevalue("smollm")  # the session's copy: the same model, loaded once
    from kgrag.generators.transformers_backend import TransformersGenerator

    real_load = TransformersGenerator.load.__func__

    def load(cls, model: str, **kwargs):
        return smollm if model == "smollm2" and not kwargs.get("temperature") else real_load(cls, model, **kwargs)

    monkeypatch.setattr(TransformersGenerator, "load", classmethod(load))
    return tmp_path


@pytest.mark.parametrize("page", [p for p in _pages() if runnable_blocks(p.read_text())], ids=_page_id)
def test_docs_examples_run(page: Path, docs_env: Path):
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for number, block in enumerate(runnable_blocks(page.read_text()), start=1):
        code = compile(block, f"{_page_id(page)} (runnable block {number})", "exec")
        exec(code, namespace)  # noqa: S102 - our own documentation

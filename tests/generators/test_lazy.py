"""The pipeline's generator opens on first use: a question the evidence decides never loads the LLM, and the
context-token counts come from the model's own tokenizer, loaded alone (the model reuses it later)."""

from __future__ import annotations

import pytest

from kgrag.errors import BackendUnavailableError
from kgrag.generators.lazy import LazyGenerator
from kgrag.answer.pipeline import Pipeline
from kgrag.answer.prompts import render_context
from kgrag.types import Question

MCQ = Question(text="Which Gene is associated with psoriasis and myelodysplastic syndrome?",
               options=["NOD2", "CHEK2", "HLA-B"])


@pytest.fixture()
def lazy_pipeline(tmp_settings, embedder, tiny_store) -> Pipeline:
    settings = tmp_settings.model_copy(update={"retrieval_mode": "kg", "prune_floor": 0.0, "generator": "transformers",
                                               "selection_mode": "llm+evidence", "llm_model": "smollm2"})
    return Pipeline(settings, store=tiny_store, embedder=embedder, generator=LazyGenerator(settings))


def test_evidence_decided_answers_never_load_the_llm_and_count_tokens_exactly(lazy_pipeline, smollm) -> None:
    lazy = lazy_pipeline.generator
    [mcq] = lazy_pipeline.answer_batch([MCQ])
    assert mcq.choice == "HLA-B" and mcq.support == "direct"
    assert not lazy.loaded, "the evidence decided: no model should have been loaded"
    assert mcq.usage.context_tokens == smollm.count_tokens([render_context(mcq.evidence)])[0] > 0
    assert f"generator={smollm.name}" in mcq.trace


def test_the_llm_loads_on_first_use_reusing_the_tokenizer(lazy_pipeline, smollm) -> None:
    lazy = lazy_pipeline.generator
    lazy.count_tokens(["psoriasis"])
    tokenizer = lazy._tokenizer
    llm_only = Pipeline(lazy_pipeline.settings.model_copy(update={"selection_mode": "llm"}), store=lazy_pipeline.store,
                        embedder=lazy_pipeline.retriever.embedder, generator=lazy)
    [mcq] = llm_only.answer_batch([MCQ])
    assert lazy.loaded and lazy.get().tokenizer is tokenizer and lazy.name == smollm.name
    assert mcq.option_scores is not None and len(mcq.option_scores) == 3
    assert lazy.count_tokens(["psoriasis and HLA-B"]) == smollm.count_tokens(["psoriasis and HLA-B"])


def test_a_missing_model_file_fails_when_the_pipeline_is_built(tmp_settings, tmp_path) -> None:
    settings = tmp_settings.model_copy(update={"generator": "transformers", "llm_model": str(tmp_path / "absent.gguf")})
    with pytest.raises(BackendUnavailableError, match="no such GGUF file"):
        LazyGenerator(settings)

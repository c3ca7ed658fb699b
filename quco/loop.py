"""QuCo's dynamic loop: generate sentence by sentence; after each, gate stage 2 checks its entity pairs.

All questions of a batch advance in step: each step is ONE generation call for every question still
writing, ONE linking pass over the new sentences, ONE co-occurrence lookup for all their pairs,
then, for the sentences flagged, ONE retrieval (graph + text, pruned against the sentence) and ONE
regeneration call. A question stops when its model ends the answer (no sentence stop reached) or
after ``settings.max_answer_sentences`` sentences.

Example::

    pipe = Pipeline.from_settings(load_settings(gate_mode="gated"))
    pipe.answer("Is metformin used for Takayasu arteritis?").gate   # stage-1 and stage-2 decisions
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kgrag.prompts import build_prompt
from kgrag.types import Evidence, GateDecision, LinkedEntity, Question, Usage
from quco.gate import entity_pairs

if TYPE_CHECKING:  # pragma: no cover
    from kgrag.pipeline import Pipeline

SENTENCE_STOPS = [". ", ".\n", "? ", "! "]
SENTENCE_TOKENS = 96


def sentence_pairs(question_entities: Sequence[LinkedEntity], sentence_entities: Sequence[LinkedEntity]) -> list[tuple[str, str]]:
    """Pairs among the question's and the sentence's entities that involve at least one entity of the sentence
    (an ancestor linked only because a longer mention names it, ``within``, is no claim's subject)."""
    sentence_entities = [e for e in sentence_entities if e.within is None]
    in_sentence = {e.name.lower() for e in sentence_entities}
    names = [e.name for e in sentence_entities] + [e.name for e in question_entities if e.within is None]
    return [p for p in entity_pairs(names) if p[0].lower() in in_sentence or p[1].lower() in in_sentence]


def _merge(evidence: list[Evidence], new: Sequence[Evidence]) -> int:
    have = {e.id for e in evidence}
    added = [e for e in new if e.id not in have]
    evidence.extend(added)
    return len(added)


def dynamic_generate(pipeline: "Pipeline", qs: Sequence[Question], evidence: Sequence[list[Evidence]],
                     entities: Sequence[Sequence[LinkedEntity]], usages: Sequence[Usage],
                     decisions: Sequence[list[GateDecision]]) -> list[str]:
    """Answer texts for free-text questions; ``evidence``, ``usages`` and ``decisions`` are extended in place."""
    settings, generator, gate = pipeline.settings, pipeline.generator, pipeline.gate
    answers = [""] * len(qs)
    active = list(range(len(qs)))
    for _ in range(settings.max_answer_sentences):
        if not active:
            break
        gens = generator.generate([build_prompt(qs[j], evidence[j], answers[j]) for j in active],
                                  max_tokens=SENTENCE_TOKENS, stop=SENTENCE_STOPS)
        for j, g in zip(active, gens):
            usages[j].llm_calls += 1
            usages[j].prompt_tokens += g.prompt_tokens
            usages[j].completion_tokens += g.completion_tokens
        sentences = [g.text for g in gens]
        linked = pipeline.linker.link(sentences, fallback=False) if pipeline.linker else [[] for _ in sentences]
        pairs = [sentence_pairs(entities[j], ents) for j, ents in zip(active, linked)]
        checks = gate.check_sentences(pairs)
        flagged = [k for k, check in enumerate(checks) if check.decision.retrieve]
        for k, check in enumerate(checks):
            decisions[active[k]].append(check.decision)
        if flagged:
            by_name = {e.name.lower(): e for k in flagged for e in list(linked[k]) + list(entities[active[k]])}
            pair_entities = [[by_name[n.lower()] for p in checks[k].flagged_pairs for n in p if n.lower() in by_name]
                             for k in flagged]
            queries = [" ".join(n for p in checks[k].flagged_pairs for n in p) or sentences[k] for k in flagged]
            found, _ = pipeline.retrieve(queries, pair_entities, [{} for _ in flagged], [True] * len(flagged))
            for k, new in zip(flagged, found):
                usages[active[k]].retrievals += 1
                _merge(evidence[active[k]], new)
            regens = generator.generate([build_prompt(qs[active[k]], evidence[active[k]], answers[active[k]])
                                         for k in flagged], max_tokens=SENTENCE_TOKENS, stop=SENTENCE_STOPS)
            for k, g in zip(flagged, regens):
                j = active[k]
                usages[j].llm_calls += 1
                usages[j].prompt_tokens += g.prompt_tokens
                usages[j].completion_tokens += g.completion_tokens
                sentences[k], gens[k] = g.text, g
        still = []
        for k, j in enumerate(active):
            if sentences[k]:
                answers[j] = f"{answers[j]} {sentences[k]}".strip()
            if gens[k].finish_reason == "stop" and sentences[k]:
                still.append(j)
        active = still
    return answers

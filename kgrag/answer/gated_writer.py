"""QuCo's dynamic loop as a writer: generate sentence by sentence; after each, gate stage 2 checks its entity pairs.

All questions of a batch advance in step: each step is ONE generation call for every question still
writing, ONE linking pass over the new sentences, ONE co-occurrence lookup for all their pairs,
then, for the sentences flagged, ONE retrieval (graph + text, pruned against the sentence, through
the :class:`~kgrag.answer.retriever.Retriever`) and ONE regeneration call. A question stops when its model
ends the answer (no sentence stop reached) or after ``settings.max_answer_sentences`` sentences.

:class:`QucoWriter` is given the Retriever, the Generator and the Gate (not the Pipeline) and returns
one :class:`~kgrag.types.Reply` per question: the text, the evidence with what was retrieved on the
way, the stage-2 decisions and the usage.

Example::

    writer = QucoWriter(settings, retriever, generator, Gate.from_settings(settings))
    [reply] = writer.write([Question(text="Is metformin used for Takayasu arteritis?")], linked, [evidence])
    reply.text, reply.gate   # stage-2 decisions, one per sentence
"""

from __future__ import annotations

from collections.abc import Sequence

from kgrag.generators.base import Generation, Generator, Prompt, TextCallback
from kgrag.answer.prompts import build_prompt
from kgrag.answer.retriever import Linked, Retriever
from kgrag.settings import Settings
from kgrag.types import AnswerItem, Evidence, LinkedEntity, Question, Reply, Usage
from quco.gate import Gate, entity_pairs

SENTENCE_STOPS = [". ", ".\n", "? ", "! "]
SENTENCE_TOKENS = 96


def sentence_pairs(question_entities: Sequence[LinkedEntity], sentence_entities: Sequence[LinkedEntity]) -> list[tuple[str, str]]:
    """Pairs among the question's and the sentence's entities that involve at least one entity of the sentence
    (an ancestor linked only because a longer mention names it, ``within``, is no claim's subject)."""
    sentence_entities = [e for e in sentence_entities if e.within is None]
    in_sentence = {e.name.lower() for e in sentence_entities}
    names = [e.name for e in sentence_entities] + [e.name for e in question_entities if e.within is None]
    return [p for p in entity_pairs(names) if p[0].lower() in in_sentence or p[1].lower() in in_sentence]


def _merge(evidence: list[Evidence], new: Sequence[Evidence]) -> list[Evidence]:
    """``evidence`` and, after it, the items of ``new`` it does not hold yet (by id)."""
    have = {e.id for e in evidence}
    return evidence + [e for e in new if e.id not in have]


class QucoWriter:
    """Free-text answers written sentence by sentence, each sentence checked by gate stage 2."""

    name = "llm+gate"

    def __init__(self, settings: Settings, retriever: Retriever, generator: Generator, gate: Gate) -> None:
        self.settings = settings
        self.retriever = retriever
        self.generator = generator
        self.gate = gate

    def _generate(self, prompts: list[Prompt], replies: list[Reply], who: Sequence[int]) -> list[Generation]:
        """One sentence per prompt (ONE call); each generation's usage is added to the reply of its question."""
        gens = self.generator.generate(prompts, max_tokens=SENTENCE_TOKENS, stop=SENTENCE_STOPS)
        for j, g in zip(who, gens):
            replies[j].usage = replies[j].usage + Usage.of_generation(g)
        return gens

    def write(self, qs: Sequence[Question], linked: Sequence[Linked], evidence: Sequence[Sequence[Evidence]],
              items: Sequence[Sequence[AnswerItem]] | None = None, on_text: TextCallback | None = None) -> list[Reply]:
        """The loop below; ``on_text`` gets each answer whole when the loop ends (its sentences may be regenerated)."""
        replies = self._write(qs, linked, evidence)
        if on_text is not None:
            for index, reply in enumerate(replies):
                on_text(index, reply.text)
        return replies

    def _write(self, qs: Sequence[Question], linked: Sequence[Linked],
               evidence: Sequence[Sequence[Evidence]]) -> list[Reply]:
        replies = [Reply(evidence=list(ev)) for ev in evidence]
        entities = [x.entities for x in linked]
        active = list(range(len(qs)))
        for _ in range(self.settings.max_answer_sentences):
            if not active:
                break
            gens = self._generate([build_prompt(qs[j], replies[j].evidence, replies[j].text) for j in active],
                                  replies, active)
            sentences = [g.text for g in gens]
            sentence_entities = self.retriever.link_texts(sentences, fallback=False)
            pairs = [sentence_pairs(entities[j], ents) for j, ents in zip(active, sentence_entities)]
            checks = self.gate.check_sentences(pairs)
            flagged = [k for k, check in enumerate(checks) if check.decision.retrieve]
            for k, check in enumerate(checks):
                replies[active[k]].gate.append(check.decision)
            if flagged:
                by_name = {e.name.lower(): e for k in flagged for e in list(sentence_entities[k]) + list(entities[active[k]])}
                pair_links = [Linked(entities=[by_name[n.lower()] for p in checks[k].flagged_pairs for n in p
                                               if n.lower() in by_name]) for k in flagged]
                queries = [" ".join(n for p in checks[k].flagged_pairs for n in p) or sentences[k] for k in flagged]
                for k, found in zip(flagged, self.retriever.retrieve(queries, pair_links)):
                    reply = replies[active[k]]
                    reply.usage = reply.usage + Usage(retrievals=1)
                    reply.evidence = _merge(reply.evidence, found.evidence)
                regens = self._generate([build_prompt(qs[active[k]], replies[active[k]].evidence, replies[active[k]].text)
                                         for k in flagged], replies, [active[k] for k in flagged])
                for k, g in zip(flagged, regens):
                    sentences[k], gens[k] = g.text, g
            still = []
            for k, j in enumerate(active):
                if sentences[k]:
                    replies[j].text = f"{replies[j].text} {sentences[k]}".strip()
                if gens[k].finish_reason == "stop" and sentences[k]:
                    still.append(j)
            active = still
        return replies

"""Answer parsing: constrained choice first, then a tolerant parser; ambiguity parses to None."""

from __future__ import annotations

import pytest

from eval.parsing import parse_answer, parse_text
from kgrag.types import Answer

TF = ["True", "False"]
YNM = ["yes", "no", "maybe"]
GENES = ["NOD2", "CHEK2", "HLA-B", "GCKR", "PKNOX2"]
MED = ["aspirin", "ibuprofen", "paracetamol", "morphine"]


@pytest.mark.parametrize(
    ("text", "options", "expected", "method"),
    [
        ('{"answer": "True"}', TF, "True", "json"),
        ('{{\n  "answer": "False"\n}}', TF, "False", "json"),  # KG-RAG's doubled braces
        ('  {\n"answer": True\n}', TF, "True", "json"),  # unquoted Python bool
        ('{"answer": "HLA-B"}\n\nExplanation: NOD2 and CHEK2 are not.', GENES, "HLA-B", "json"),
        ('  { "answer": { "Gene": "GCKR", "diseases": ["psoriasis"] } }', GENES, "GCKR", "json"),
        ("false", TF, "False", "exact"),
        ("Answer: maybe.", YNM, "maybe", "exact"),
        ("B", MED, "ibuprofen", "letter"),
        ("(C)", MED, "paracetamol", "letter"),
        ("D. morphine", MED, "morphine", "letter"),
        ("The answer is (A) because it is cheap.", MED, "aspirin", "letter"),
        ("The answer is ibuprofen, clearly.", MED, "ibuprofen", "phrase"),
        ("Based on the context, the Gene is:\n\nHLA-B.", GENES, "HLA-B", "mention"),
        ("Yes, the trial shows it, though no earlier study did.", YNM, "yes", "mention"),
    ],
)
def test_parses(text, options, expected, method):
    parsed = parse_text(text, options)
    assert (parsed.choice, parsed.method) == (expected, method)
    assert not parsed.failed


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ('{"answer": "HLA-B, CHEK2"}', GENES),  # two options at once (GPT-4 in the anchors)
        ('{"answer": "None"}', GENES),
        ("I cannot tell from the information given.", TF),
        ("NOD2 or CHEK2 may both be involved.", GENES),
        ("", TF),
        ("It may be true for one and false for the other.", TF),
        ("The answer is E.", MED),  # letter outside the options
        ("The answer is a drug not listed here.", MED),  # lower-case 'a' is not a letter answer
        ("The statement is not true.", TF),  # negated label: no guess
    ],
)
def test_unparseable_is_none(text, options):
    parsed = parse_text(text, options)
    assert parsed.choice is None and parsed.failed and parsed.method == "none"
    assert parsed.detail


def test_gene_names_do_not_match_inside_longer_names():
    options = ["HLA-B", "HLA-DQB1", "TERT", "ABO", "GNE"]
    assert parse_text("It is HLA-DQB1.", options).choice == "HLA-DQB1"
    assert parse_text("HLA-B27 carriers", options).choice is None


def test_valid_choice_wins_over_text_and_invalid_choice_falls_back():
    valid = Answer(question="q", text="I think CHEK2", choice="HLA-B")
    assert parse_answer(valid, GENES).choice == "HLA-B"
    assert parse_answer(valid, GENES).method == "choice"
    invalid = Answer(question="q", text='{"answer": "GCKR"}', choice="TP53")
    parsed = parse_answer(invalid, GENES)
    assert (parsed.choice, parsed.method) == ("GCKR", "json")
    neither = Answer(question="q", text="no idea", choice="TP53")
    parsed = parse_answer(neither, GENES)
    assert parsed.failed and "TP53" in parsed.detail


def test_single_letter_options_are_not_read_as_letters():
    assert parse_text("B", ["A", "B"]).choice == "B"
    assert parse_text("B", ["x", "B", "y"]).method == "exact"


def test_needs_options():
    with pytest.raises(ValueError, match="options"):
        parse_text("True", [])

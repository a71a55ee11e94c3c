"""Prompt format and output parser: round trip, adversarial outputs, offsets."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from ptoie.parser import parse_answer, parse_line
from ptoie.prompt import (IM_END, IM_START, NO_TRIPLE, SYSTEM_PROMPT, build_messages, clean_part,
                          format_answer, render_chatml, render_example, render_prompt)

_part = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30) \
    .map(clean_part).filter(bool)
_triples = st.lists(st.tuples(_part, _part, _part), max_size=6)


def test_prompt_is_chatml_with_portuguese_system_turn():
    prompt = render_prompt("O Brasil é um país.")
    assert prompt == (f"{IM_START}system\n{SYSTEM_PROMPT}{IM_END}\n"
                      f"{IM_START}user\nO Brasil é um país.{IM_END}\n{IM_START}assistant\n")
    assert "triplas" in SYSTEM_PROMPT


def test_training_example_is_the_inference_prompt_plus_answer():
    triples = [("o Brasil", "é", "um país")]
    prompt, completion = render_example("O Brasil é um país.", triples)
    assert prompt == render_prompt("O Brasil é um país.")
    assert completion == "o Brasil | é | um país" + IM_END
    full = render_chatml(build_messages("O Brasil é um país.", triples), add_generation_prompt=False)
    assert full == prompt + completion + "\n"


def test_no_triple_answer():
    assert format_answer([]) == NO_TRIPLE
    result = parse_answer(NO_TRIPLE)
    assert result.triples == [] and result.rejected == 0


@given(_triples)
@settings(max_examples=200, deadline=None)
def test_round_trip(triples):
    parsed = parse_answer(format_answer(triples))
    unique = list(dict.fromkeys(triples, None))
    keys = []
    expected = []
    for t in unique:
        key = tuple(" ".join(p.casefold().split()) for p in t)
        if key not in keys:
            keys.append(key)
            expected.append(t)
    assert [tr.parts for tr in parsed.triples] == expected
    assert parsed.rejected == 0


@given(st.text(max_size=400))
@settings(max_examples=300, deadline=None)
def test_parser_never_raises_on_garbage(text):
    result = parse_answer(text, sentence="Uma frase qualquer.")
    assert result.rejected >= 0
    for t in result.triples:
        assert all(t.parts)


def test_adversarial_outputs():
    text = ("a | b | c\n"
            "a | b | c\n"            # duplicate
            "A |  b | C\n"           # duplicate up to case/spacing
            "só duas | partes\n"     # rejected
            "um | dois | três | quatro\n"  # rejected
            " | vazio | x\n"         # rejected: empty part
            "\n\n"
            "x | y | z\n"
            "p|q|r\n"               # no spaces around the separator
            f"d | e | f{IM_END}lixo depois do fim\n"
            "nunca | lido | aqui")
    result = parse_answer(text)
    assert [t.parts for t in result.triples] == [("a", "b", "c"), ("x", "y", "z"), ("p", "q", "r"),
                                                 ("d", "e", "f")]
    assert result.rejected == 3
    assert result.duplicates == 2


def test_truncated_and_empty_outputs():
    assert parse_answer("").triples == []
    assert parse_answer(None).triples == []
    truncated = parse_answer("o gato | comeu | o rato\no cão | lat")
    assert [t.parts for t in truncated.triples] == [("o gato", "comeu", "o rato")]
    assert truncated.rejected == 1
    assert parse_line("sem separador") is None


def test_offsets_exact_case_and_contractions():
    sentence = "Os clientes do Banco da Escócia ganham 3% em balanços."
    result = parse_answer("os clientes de o Banco de a Escócia | ganham | 3% em balanços", sentence)
    t = result.triples[0]
    assert sentence[t.arg1_span[0]:t.arg1_span[1]] == "Os clientes do Banco da Escócia"
    assert sentence[t.rel_span[0]:t.rel_span[1]] == "ganham"
    assert sentence[t.arg2_span[0]:t.arg2_span[1]] == "3% em balanços"
    missing = parse_answer("algo | que não | aparece", sentence).triples[0]
    assert missing.arg1_span is None and missing.rel_span is None


def test_line_confidences_attach_to_triples():
    result = parse_answer("a | b | c\nlixo\nd | e | f", line_confidences=[0.9, 0.1, 0.5])
    assert [t.confidence for t in result.triples] == [0.9, 0.5]

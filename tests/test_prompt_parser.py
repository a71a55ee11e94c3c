"""Prompt format and output parser: round trip, adversarial outputs, offsets."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from ptoie.extract.parser import parse_answer, parse_line
from ptoie.extract.prompt import (CHATML, GEMMA, IM_END, IM_START, NO_TRIPLE, STOP_TEXTS, SYSTEM_PROMPT, build_messages,
                          chat_format_for, clean_part, format_answer, render, render_chatml, render_example,
                          render_prompt, shared_prefix)

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


def test_gemma_prompt_opens_the_user_turn_with_the_instruction():
    prompt = render_prompt("O Brasil é um país.", GEMMA)
    assert prompt == ("<bos><start_of_turn>user\n" + SYSTEM_PROMPT + "\n\nO Brasil é um país.<end_of_turn>\n"
                      "<start_of_turn>model\n")
    triples = [("o Brasil", "é", "um país")]
    prompt, completion = render_example("O Brasil é um país.", triples, GEMMA)
    assert completion == "o Brasil | é | um país<end_of_turn>"
    full = render(build_messages("O Brasil é um país.", triples), add_generation_prompt=False, fmt=GEMMA)
    assert full == prompt + completion + "\n"


def test_every_prompt_starts_with_the_shared_prefix_of_its_format():
    for fmt in (CHATML, GEMMA):
        prefix = shared_prefix(fmt)
        assert SYSTEM_PROMPT in prefix
        for sentence in ("A.", "Machado de Assis escreveu Dom Casmurro."):
            prompt = render_prompt(sentence, fmt)
            assert prompt.startswith(prefix) and sentence not in prefix


def test_chat_format_follows_the_architecture():
    assert chat_format_for("gemma3") is GEMMA and chat_format_for("gemma3_text") is GEMMA
    assert chat_format_for("llama") is CHATML and chat_format_for("qwen2") is CHATML
    assert chat_format_for(None) is CHATML


def test_every_turn_marker_ends_an_answer():
    """The extractor stops generation at STOP_TEXTS: every format's end of turn and turn start."""
    assert set(STOP_TEXTS) == {IM_END, IM_START, "<end_of_turn>", "<start_of_turn>"}


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
        restated = any(key[:2] == k[:2] and (key[2].startswith(k[2]) or k[2].startswith(key[2])) for k in keys)
        if not restated:
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
    checked = parse_answer(text, sentence="Uma frase qualquer.", require_spans=True)
    assert len(checked.triples) + checked.unsupported + checked.duplicates >= len(result.triples)
    for t in checked.triples:
        assert t.arg1_span is not None and t.arg2_span is not None


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
            "d | e | f")
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


def test_a_line_begun_again_and_cut_or_stretched_is_a_duplicate():
    text = ("os humanos | eram | os únicos animais inteligentes\n"
            "os humanos | eram | os únicos animais int\n"          # begun again and cut
            "Os humanos | eram | os únicos animais inteligentes o suficiente\n"   # stretched
            "os humanos | eram | católicos\n"                      # another fact: kept
            "os humanos | foram | os únicos animais")               # another relation: kept
    result = parse_answer(text)
    assert [t.arg2 for t in result.triples] == ["os únicos animais inteligentes", "católicos",
                                                "os únicos animais"]
    assert result.duplicates == 2


def test_a_later_line_carries_the_probability_of_going_on_to_it():
    import math
    from ptoie.extract.generation import Generation, line_confidences
    lp = math.log
    gen = Generation(text="a | b | c\nd | e | f\n\ng | h | i",
                     token_texts=["a", " |", " b", " |", " c", "\n", "d", " |", " e", " |", " f", "\n\n",
                                  "g", " |", " h", " |", " i"],
                     token_logprobs=[lp(0.9)] * 5 + [lp(0.2)] + [lp(0.8)] * 5 + [lp(0.5)] + [lp(1.0)] * 5)
    first, second, empty, third = line_confidences(gen)
    assert math.isclose(first, 0.9)                   # the first line: its own tokens only
    assert math.isclose(second, 0.8 * 0.2)            # x P(newline after line 1)
    assert empty is None
    assert math.isclose(third, 1.0 * 0.2 * 0.5)       # x both newlines before it


# ---------------------------------------------------------------- labels as written

FORMAS = "Alan, que estuda na UFBA, é membro da Formas, e Maria mora em Salvador desde 2010."


def _slices(sentence, t):
    return tuple(sentence[s[0]:s[1]] if s else None for s in (t.arg1_span, t.rel_span, t.arg2_span))


def test_parts_become_the_sentences_own_text():
    answer = ("alan | estuda | em a UFBA\n"
              "Alan | é membro | de a Formas\n"
              "Alan | é membro | da Formas\n"            # the same triple as the sentence writes it
              "Alan | é membro de | a Formas\n"          # 'da' split between rel and arg2
              "maria | mora em | Salvador\n"
              "Maria | morava | em Salvador desde 2010")  # rel not in the sentence: the model's string
    result = parse_answer(answer, FORMAS)
    assert [t.parts for t in result.triples] == [
        ("Alan", "estuda", "na UFBA"),
        ("Alan", "é membro", "da Formas"),
        ("Maria", "mora em", "Salvador"),
        ("Maria", "morava", "em Salvador desde 2010"),
    ]
    assert result.duplicates == 2      # 'da Formas' and 'é membro de | a Formas' are the 2nd triple
    # a part found is exactly its span's text; a part not found has no span
    assert _slices(FORMAS, result.triples[1]) == ("Alan", "é membro", "da Formas")
    assert _slices(FORMAS, result.triples[3]) == ("Maria", None, "em Salvador desde 2010")
    for t in result.triples:
        assert all(label == written for label, written in zip(t.parts, _slices(FORMAS, t)) if written)
    # every sink is built from Triple.to_record: the record carries the label and its offsets
    record = result.triples[1].to_record(doc_id="d", sentence_id=0, sentence=FORMAS,
                                         extraction_index=1, model_id="m")
    assert record["arg2"] == "da Formas" == FORMAS[record["arg2_start"]:record["arg2_end"]]
    assert (record["arg1"], record["rel"]) == ("Alan", "é membro")


def test_a_contraction_belongs_to_the_part_with_its_article():
    s = "O ministro do governo mora no Brasil."
    # the part holding only the article takes the whole word; the part ending with only the
    # preposition leaves it out, unless the preposition is all it has
    assert parse_answer("o governo | mora em | o Brasil", s).triples[0].parts == \
        ("do governo", "mora", "no Brasil")
    assert parse_answer("O ministro de | o governo | mora", s).triples[0].parts == \
        ("O ministro", "do governo", "mora")
    assert parse_answer("ministro | de | o governo", s).triples[0].parts == ("ministro", "do", "do governo")
    # only whole words are found: the model's string, no span
    t = parse_answer("O minis | mora | Brasil", s).triples[0]
    assert t.parts == ("O minis", "mora", "Brasil") and t.arg1_span is None


def test_require_spans_keeps_what_the_sentence_holds_as_two_separate_arguments():
    answer = ("Alan | é aluno de | a UFBA\n"             # relation not in the sentence: kept
              "Alan | estuda | em a UFPE\n"              # arg2 not in the sentence
              "como Alan | estuda | na UFBA\n"           # arg1 not in the sentence
              "Alan | estuda na | Alan, que estuda\n"     # arguments overlap
              "Maria | mora | mora\n"                     # a part repeats another
              "Maria | mora em | Salvador desde 2010")
    kept = parse_answer(answer, FORMAS, require_spans=True)
    assert [t.parts for t in kept.triples] == [("Alan", "é aluno de", "na UFBA"),
                                               ("Maria", "mora em", "Salvador desde 2010")]
    assert (kept.unsupported, kept.rejected, kept.duplicates) == (4, 0, 0)
    assert kept.triples[0].rel_span is None and kept.triples[0].arg2_span is not None
    # off (the parser's default), or without a sentence to check against: all six are kept
    assert len(parse_answer(answer, FORMAS).triples) == 6
    assert len(parse_answer(answer, require_spans=True).triples) == 6
    # arg2 is looked for away from arg1 first: 'o Brasil' is the sentence's second one, kept
    s = "O presidente do Brasil visitou o Brasil ontem."
    t = parse_answer("O presidente de o Brasil | visitou | o Brasil", s, require_spans=True).triples[0]
    assert (t.arg1_span, t.arg2_span) == ((0, 22), (31, 39))
    assert parse_answer("O presidente de o Brasil | visitou | Brasil ontem", s, require_spans=True).triples
    assert parse_answer("O presidente | de | Brasil", "O presidente do Brasil.", require_spans=True).unsupported == 0
    # a dropped line does not count as seen: the same triple written right comes next
    again = parse_answer("Alan | estuda | em a UFPE\nAlan | estuda | em a UFBA", FORMAS, require_spans=True)
    assert [t.parts for t in again.triples] == [("Alan", "estuda", "na UFBA")]


def test_without_a_sentence_parts_stay_as_the_model_wrote_them():
    assert parse_answer("Alan | é membro de | a Formas").triples[0].parts == ("Alan", "é membro de", "a Formas")


_SENTENCE = ("Do alto, os clientes do Banco da Escócia viram pelo vidro o mar e àquela hora "
             "disseram nos jornais: 3% ao ano é pouco.")


def _pieces(sentence):
    """(piece, token index, piece index, pieces of the token) of every comparison piece."""
    from ptoie.text.tokens import split_contractions, tokenize_with_spans

    out = []
    for t, (tok, _, _) in enumerate(tokenize_with_spans(sentence)):
        pieces = split_contractions([tok])
        out.extend((p.casefold(), t, k, len(pieces)) for k, p in enumerate(pieces))
    return out


_PIECES = _pieces(_SENTENCE)


@st.composite
def _consecutive_parts(draw):
    """Three adjacent stretches of the sentence, as the model writes them (split, lower-cased),
    the first starting and the last ending at a word boundary; part boundaries fall anywhere,
    inside contractions included."""
    starts = [i for i, p in enumerate(_PIECES) if p[2] == 0]
    a = draw(st.sampled_from(starts))
    b = draw(st.integers(a + 2, a + 6))
    c = draw(st.integers(b + 2, b + 6))
    ends = [j for j in range(c + 2, c + 7) if j <= len(_PIECES) and _PIECES[j - 1][2] == _PIECES[j - 1][3] - 1]
    d = draw(st.sampled_from(ends)) if ends else None
    if d is None:
        from hypothesis import assume
        assume(False)
    return tuple(" ".join(p[0] for p in _PIECES[x:y]) for x, y in ((a, b), (b, c), (c, d))), (a, b, c)


@given(_consecutive_parts())
@settings(max_examples=300, deadline=None)
def test_labels_score_as_the_models_parts_under_pt(drawn):
    """Whatever adjacent stretches of the sentence the model names, the labels are the sentence's
    text of their spans, and every pt matcher scores them as the model's own strings."""
    from hypothesis import assume
    from ptoie.evaluation.matchers import carb_credit, exact_match, lexical_coverage, strict_match
    from ptoie.text.tokens import tokenize_with_spans

    parts, firsts = drawn
    tokens = tokenize_with_spans(_SENTENCE)
    t = parse_answer(" | ".join(parts), _SENTENCE).triples[0]
    spans = (t.arg1_span, t.rel_span, t.arg2_span)
    # a repeated word may be found earlier in the sentence than where the part was drawn from
    assume(all(span and span[0] == tokens[_PIECES[i][1]][1] for span, i in zip(spans, firsts)))
    assert t.parts == _slices(_SENTENCE, t)
    assert exact_match(parts, t.parts, "pt") and exact_match(t.parts, parts, "pt")
    assert strict_match(parts, t.parts, "pt")
    assert carb_credit(parts, t.parts, "pt") == (1.0, 1.0)
    assert lexical_coverage(parts, t.parts, "pt") == lexical_coverage(parts, parts, "pt")


def test_an_answer_stops_where_it_begins_a_line_again():
    from ptoie.extract.generation import repeats_a_line
    assert repeats_a_line(b"a | b | c d\n") == -1                            # one line, nothing repeated
    assert repeats_a_line(b"a | b | c d\ne | f | g\n") == -1
    done = b"a | b | c d\ne | f | g\na | b | c d\n"
    assert repeats_a_line(done) == len(done)                                   # a whole copy: ends there
    assert repeats_a_line(b"a | b | c d e\nx | y | z\na | b | c d") == 24    # arg1, rel, a word of arg2 again: cut
    assert repeats_a_line(b"a | b | c d e\na | b | c") == -1                  # not yet (first word unfinished)
    assert repeats_a_line(b"a | b | c d e\na | b | x d") == -1                # goes on differently

"""prepare (contractions, bad blocks, split, schema) and config validation."""

from pathlib import Path

import pytest

from ptoie.training.config import ConfigError, TrainConfig
from ptoie.training.prepare import detokenize, prepare

FIXTURE = Path(__file__).parent / "fixtures" / "training" / "tiny.conll"


def test_prepare_rejoins_contractions_and_counts_bad_block():
    data = prepare([FIXTURE], validation_fraction=0.0)
    assert len(data.bad_blocks) == 1 and "ARG1" in data.bad_blocks[0].reason
    record = next(r for r in data.train if r["sentence"].startswith("Ele"))
    assert record["sentence"] == "Ele mora no Rio."
    assert record["triples"] == [["Ele", "mora", "no Rio"]]
    assert record["messages"][2]["content"] == "Ele | mora | no Rio"


def test_split_is_deterministic_and_by_sentence():
    a = prepare([FIXTURE], validation_fraction=0.5, seed=3)
    b = prepare([FIXTURE], validation_fraction=0.5, seed=3)
    assert [r["id"] for r in a.validation] == [r["id"] for r in b.validation]
    assert len(a.validation) == 1 and len(a.train) == 1


def test_detokenize_punctuation():
    assert detokenize(["Oi", ",", "(", "de", "o", "Rio", ")", "!"]) == "Oi, (do Rio)!"


@pytest.mark.parametrize("raw, field", [
    ({"base_model": "x", "method": "qlora"}, "method"),
    ({"base_model": "x", "lora_r": "8"}, "lora_r"),
    ({"base_model": "x", "learning_rat": 1e-4}, "learning_rat"),
    ({"method": "lora"}, "base_model"),
])
def test_config_errors_name_the_field(raw, field):
    with pytest.raises(ConfigError, match=field):
        TrainConfig.from_dict(raw)


# --- every extraction of a sentence, across blocks and files ----------------------------------------

def _write_conll(path: Path, blocks: list[tuple[str, dict[str, tuple[int, int]]]]) -> Path:
    """Blocks of TransAlign BIOES (tag in column 9): ``(sentence tokens, {role: (start, end)})``."""
    lines = []
    for text, spans in blocks:
        tokens = text.split()
        tags = ["O"] * len(tokens)
        for role, (start, end) in spans.items():
            if end - start == 1:
                tags[start] = f"S-{role}"
            else:
                tags[start] = f"B-{role}"
                tags[start + 1:end - 1] = [f"I-{role}"] * (end - start - 2)
                tags[end - 1] = f"E-{role}"
        lines += [f"{tok}\tXX\t-\t-\t-\t-\t-\t*\t{tag}\t-" for tok, tag in zip(tokens, tags)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


SENTENCE = "Ana mora em o Rio e Rui estuda em a UFBA ."
#            0   1    2  3 4  5 6   7      8  9 10  11


def test_a_sentence_in_two_files_becomes_one_record_with_every_triple_in_reading_order(tmp_path):
    a = _write_conll(tmp_path / "a.conll", [
        (SENTENCE, {"ARG0": (6, 7), "V": (7, 8), "ARG1": (8, 11)}),       # Rui | estuda | na UFBA
    ])
    b = _write_conll(tmp_path / "b.conll", [
        # the same sentence tokenised/capitalised a little differently in another file
        ("ana mora em o Rio e Rui estuda em a UFBA .", {"ARG0": (0, 1), "V": (1, 2), "ARG1": (2, 5)}),
        ("Outra frase foi escrita .", {"ARG0": (0, 2), "V": (2, 4), "ARG1": (4, 5)}),
    ])
    data = prepare([a, b], validation_fraction=0.0)
    assert len(data.train) == 2 and data.summary()["sentences_read"] == 3
    record = data.train[0]
    assert record["sentence"] == "Ana mora no Rio e Rui estuda na UFBA."   # the first block's text
    assert record["source"] == "a.conll"
    # relation positions: "mora" (1) before "estuda" (7), whatever the file order
    assert record["triples"] == [["ana", "mora", "no Rio"], ["Rui", "estuda", "na UFBA"]]
    assert record["messages"][2]["content"] == "ana | mora | no Rio\nRui | estuda | na UFBA"


def test_the_same_triple_from_two_blocks_or_files_is_kept_once(tmp_path):
    block = (SENTENCE, {"ARG0": (0, 1), "V": (1, 2), "ARG1": (2, 5)})
    a = _write_conll(tmp_path / "a.conll", [block, block])                 # repeated in one file
    b = _write_conll(tmp_path / "b.conll", [
        ("ANA mora em o Rio e Rui estuda em a UFBA .", {"ARG0": (0, 1), "V": (1, 2), "ARG1": (2, 5)}),
        (SENTENCE, {"ARG0": (6, 7), "V": (7, 8), "ARG1": (8, 11)}),
    ])
    data = prepare([a, b], validation_fraction=0.0)
    assert len(data.train) == 1
    assert data.train[0]["triples"] == [["Ana", "mora", "no Rio"], ["Rui", "estuda", "na UFBA"]]
    assert data.duplicate_blocks == 1


def test_reading_order_uses_the_relation_then_the_arguments():
    from ptoie.training.prepare import extraction_position
    tokens = "A casa e o carro são de Ana e a casa é azul".split()
    # "casa" ... "é azul" (rel at 11) after "carro | são de | Ana" (rel at 5)
    assert extraction_position(tokens, (["a", "casa"], ["é"], ["azul"]))[0] == 11
    assert extraction_position(tokens, (["o", "carro"], ["são", "de"], ["Ana"])) == (5, 3, 7)
    # a repeated relation is taken after its arg1
    assert extraction_position("Rui é alto e Ana é baixa".split(), (["Ana"], ["é"], ["baixa"]))[0] == 5
    assert extraction_position(tokens, (["x"], ["y"], ["z"]))[0] == float("inf")


def test_validation_split_is_the_old_one_and_takes_near_duplicates_whole(tmp_path):
    from ptoie.training.prepare import group_sentences
    from ptoie.training.conll import read_conll
    blocks = [(f"Frase {i} diz algo .", {"ARG0": (0, 2), "V": (2, 3), "ARG1": (3, 4)}) for i in range(20)]
    blocks.append(("Frase 3 diz algo.", {"ARG0": (0, 2), "V": (2, 3), "ARG1": (3, 4)}))  # near-duplicate of 3
    path = _write_conll(tmp_path / "a.conll", blocks)
    import random
    order = list(range(21))
    random.Random(5).shuffle(order)
    groups = group_sentences(read_conll([path]).sentences, {3})
    assert len(groups) == 20 and [g.validation for g in groups].count(True) == 1
    assert groups[3].validation and len(groups[3].members) == 2
    data = prepare([path], validation_fraction=0.1, seed=5)   # round(21 * 0.1) = 2 sentences as read
    val_keys = {r["sentence"].replace(" ", "").rstrip(".") for r in data.validation}
    train_keys = {r["sentence"].replace(" ", "").rstrip(".") for r in data.train}
    assert not val_keys & train_keys
    expected = {f"Frase{min(i, 3) if i == 20 else i}dizalgo" for i in order[:2]}
    assert val_keys == expected


# --- negatives ------------------------------------------------------------------------------------

def test_verbless_phrases_only():
    from ptoie.training.prepare import is_verbless_phrase
    verbs = frozenset({"mora", "estuda"})
    assert is_verbless_phrase("a mitologia nórdica".split(), verbs)
    assert is_verbless_phrase("os festivais religiosos de Lenaea".split(), verbs)
    assert not is_verbless_phrase("a mitologia".split(), verbs)                    # too short
    assert not is_verbless_phrase("a aluna que estuda física".split(), verbs)      # clause, verb
    assert not is_verbless_phrase("o aluno mora longe".split(), verbs)             # corpus relation word
    assert not is_verbless_phrase("para respirar ar puro".split(), verbs)          # preposition, infinitive
    assert not is_verbless_phrase("os alunos chegando cedo".split(), verbs)        # gerund
    assert not is_verbless_phrase("a falha grave em".split(), verbs)               # ends with a preposition
    assert not is_verbless_phrase("a casa , o carro".split(), verbs)               # punctuation


def test_negatives_answer_nenhuma_and_never_repeat_a_sentence(tmp_path):
    from ptoie.extract.prompt import NO_TRIPLE
    path = _write_conll(tmp_path / "a.conll", [
        ("A mitologia nórdica antiga fala de deuses guerreiros .", {"ARG0": (0, 4), "V": (4, 6), "ARG1": (6, 8)}),
        ("Ana mora em o Rio .", {"ARG0": (0, 1), "V": (1, 2), "ARG1": (2, 5)}),
    ])
    none = prepare([path], validation_fraction=0.0)
    assert all(r["triples"] for r in none.train) and none.summary()["train_negatives"] == 0
    data = prepare([path], validation_fraction=0.0, negatives=1.0)
    negatives = [r for r in data.train if not r["triples"]]
    assert [r["sentence"] for r in negatives] == ["A mitologia nórdica antiga"]
    assert negatives[0]["messages"][2]["content"] == NO_TRIPLE
    assert negatives[0]["id"].endswith("-neg")
    assert data.summary()["train_negatives"] == 1 and data.summary()["train_sentences"] == 2


def test_validation_sentences_give_validation_negatives_only(tmp_path):
    path = _write_conll(tmp_path / "a.conll", [
        ("A mitologia nórdica antiga fala de deuses guerreiros .", {"ARG0": (0, 4), "V": (4, 6), "ARG1": (6, 8)}),
        ("Ana mora em o Rio .", {"ARG0": (0, 1), "V": (1, 2), "ARG1": (2, 5)}),
    ])
    for seed in range(6):
        data = prepare([path], validation_fraction=0.5, seed=seed, negatives=1.0)
        if data.validation[0]["sentence"].startswith("A mitologia"):
            break
    assert [r["sentence"] for r in data.validation_negatives] == ["A mitologia nórdica antiga"]
    assert all(r["triples"] for r in data.train) and all(r["triples"] for r in data.validation)


# --- two-sentence compounds ------------------------------------------------------------------------

def test_join_compound_keeps_both_sentences_as_written():
    from ptoie.training.prepare import join_compound
    assert join_compound("Ana mora no Rio.", "Rui estuda na UFBA.", semicolon=False) == \
        "Ana mora no Rio. Rui estuda na UFBA."
    assert join_compound("Ana mora no Rio.", "Rui estuda na UFBA.", semicolon=True) == \
        "Ana mora no Rio; Rui estuda na UFBA."


def test_compounds_hold_the_triples_of_both_sentences_and_leave_the_rest_unchanged(tmp_path):
    from ptoie.extract.parser import parse_answer
    blocks = [(f"Ana{i} mora em o Rio{i} .", {"ARG0": (0, 1), "V": (1, 2), "ARG1": (2, 5)}) for i in range(8)]
    path = _write_conll(tmp_path / "a.conll", blocks)
    plain = prepare([path], validation_fraction=0.25)
    data = prepare([path], validation_fraction=0.25, compounds=1.0)
    compounds = [r for r in data.train if r["id"].endswith("-cmp")]
    assert data.train[:len(plain.train)] == plain.train and data.validation == plain.validation
    assert len(compounds) == 3 and data.summary()["train_compounds"] == 3   # 6 training sentences, paired
    assert data.summary()["train_sentences"] == 6
    train_sentences = {r["sentence"] for r in plain.train}
    for record in compounds:
        assert len(record["triples"]) == 2
        parts = [s for s in train_sentences if s.rstrip(".") in record["sentence"]]
        assert len(parts) == 2                                             # two training sentences
        parsed = parse_answer(record["messages"][2]["content"], record["sentence"])
        assert [t.arg1 for t in parsed.triples] == [t[0] for t in record["triples"]]
        assert all(t.arg1_span is not None and t.arg2_span is not None for t in parsed.triples)
    validation_sentences = {r["sentence"].rstrip(".") for r in data.validation}
    assert len(data.validation_compounds) == 1
    assert all(s in data.validation_compounds[0]["sentence"] for s in validation_sentences)
    with pytest.raises(ValueError, match="compounds"):
        prepare([path], compounds=1.5)


# --- the answer format: several lines, or nenhuma ---------------------------------------------------

def _gbnf_regex(grammar: str) -> "re.Pattern[str]":
    """The GBNF subset ptoie.extract.answer_grammar writes (literals, classes, groups, * + ?, |, rule references,
    no recursion) as one Python regex, read from the grammar text itself."""
    import json
    import re
    rules = dict(line.split(" ::= ", 1) for line in grammar.splitlines() if line.strip())
    token = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|[()|*+?]|[a-z][a-z0-9-]*)')

    def compile_rule(name: str) -> str:
        out, body = [], rules[name]
        pos = 0
        while pos < len(body):
            match = token.match(body, pos)
            assert match, body[pos:]
            tok, pos = match.group(1), match.end()
            if tok.startswith('"'):
                out.append(re.escape(json.loads(tok)))
            elif tok.startswith("["):
                out.append(tok)
            elif tok == "(":
                out.append("(?:")
            elif tok in ")|*+?":
                out.append(tok)
            else:
                out.append(f"(?:{compile_rule(tok)})")
            if body[pos:].strip() == "":
                break
        return "".join(out)

    return re.compile(f"(?:{compile_rule('root')})")


def test_grammar_and_parser_take_a_multi_line_answer_and_nenhuma():
    from ptoie.extract.answer_grammar import answer_grammar
    from ptoie.extract.parser import parse_answer
    from ptoie.extract.prompt import NO_TRIPLE, format_answer
    pattern = _gbnf_regex(answer_grammar())
    triples = [["Ana", "mora", "no Rio"], ["Rui", "estuda", "na UFBA"], ["Rui", "é", "aluno"]]
    answer = format_answer(triples)
    assert pattern.fullmatch(answer) and pattern.fullmatch(NO_TRIPLE) and pattern.fullmatch(format_answer([]))
    assert not pattern.fullmatch("Ana | mora")
    assert not pattern.fullmatch("Ana | mora | no Rio\n")
    assert not pattern.fullmatch("Ana | mora | no Rio\nnenhuma")
    parsed = parse_answer(answer, "Ana mora no Rio e Rui estuda na UFBA; Rui é aluno.")
    assert [(t.arg1, t.rel, t.arg2) for t in parsed.triples] == [tuple(t) for t in triples]
    assert parsed.rejected == 0
    assert parse_answer(NO_TRIPLE).triples == [] and parse_answer(NO_TRIPLE).rejected == 0


def test_prepared_records_are_what_the_grammar_allows(tmp_path):
    from ptoie.extract.answer_grammar import answer_grammar
    pattern = _gbnf_regex(answer_grammar())
    path = _write_conll(tmp_path / "a.conll", [
        (SENTENCE, {"ARG0": (6, 7), "V": (7, 8), "ARG1": (8, 11)}),
        (SENTENCE, {"ARG0": (0, 1), "V": (1, 2), "ARG1": (2, 5)}),
        ("A mitologia nórdica antiga fala de deuses guerreiros .", {"ARG0": (0, 4), "V": (4, 6), "ARG1": (6, 8)}),
    ])
    data = prepare([path], validation_fraction=0.0, negatives=1.0)
    answers = [r["messages"][2]["content"] for r in data.train]
    assert any("\n" in a for a in answers) and "nenhuma" in answers
    assert all(pattern.fullmatch(a) for a in answers)


def test_prepare_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    from ptoie.cli.train import main
    empty = tmp_path / "empty.conll"
    empty.write_text("", encoding="utf-8")
    garbage = tmp_path / "garbage.conll"
    garbage.write_bytes(b"ok\tline\n\xff\xfe junk\n")
    good = _write_conll(tmp_path / "good.conll", [("Ana mora em o Rio .", {"ARG0": (0, 1), "V": (1, 2), "ARG1": (2, 5)})])
    out = tmp_path / "out" / "data.jsonl"
    cases = [([str(tmp_path / "missing.conll")], "missing.conll: No such file or directory"),
             ([str(empty)], "no training sentence in"),
             ([str(garbage)], "garbage.conll:2: not UTF-8 text"),
             ([str(good), "--compounds", "2"], "compounds must be in [0, 1]")]
    for argv, message in cases:
        assert main(["prepare", *argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1] and "Traceback" not in "\n".join(err)
    assert not out.parent.exists()
    assert main(["prepare", str(good), "--out", str(out), "--compounds", "0.5"]) == 0

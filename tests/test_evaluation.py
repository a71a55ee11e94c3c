"""Scorer, matchers and readers of ptoie.evaluation, on tiny gold/prediction sets with expected values
computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptoie.evaluation import (BenchmarkFormatError, Prediction, load_benchmark, read_gold_tsv,
                              read_predictions_tsv, score, score_all, write_predictions_tsv)
from ptoie.evaluation.matchers import (carb_credit, exact_match, lexical_coverage, lexical_match,
                                       sentence_key, squashed_part, strict_match, tokens)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"

S1 = "O gato come o peixe."
S2 = "A casa do Pedro é azul."
S3 = "Choveu ontem."
GOLD = f"""1\t{S1}
o gato\tcome\to peixe\t1\t1\t0
o gato\tdorme\tno sofá\t1\t0\t0
2\t{S2}
a casa do Pedro\té\tazul\t1\t1\t0
a casa\té\tde o Pedro\t1\t1\t0

3\t{S3}
"""


@pytest.fixture()
def bench(tmp_path):
    path = tmp_path / "tiny_gold.tsv"
    path.write_text(GOLD, encoding="utf-8")
    return read_gold_tsv(path)


def P(sentence, arg1, rel, arg2, confidence=None):
    return Prediction(sentence, arg1, rel, arg2, confidence)


# ---------------------------------------------------------------- readers


def test_gold_reader_keeps_only_valid_candidates_and_sentences_without_gold(bench):
    assert [s.sentence_id for s in bench.sentences] == ["1", "2", "3"]
    assert [s.text for s in bench.sentences] == [S1, S2, S3]
    assert [len(s.triples) for s in bench.sentences] == [1, 2, 0]
    assert bench.n_gold == 3 and bench.n_sentences_without_gold == 1
    assert bench.sentences[1].triples[1].parts == ("a casa", "é", "de o Pedro")


@pytest.mark.parametrize("text, message", [
    ("1\tFrase.\na\tb\tc\t1\t2\t0\n", r"tiny\.tsv:2: column 5 of 6 \('valid'\) must be 0 or 1"),
    ("1\tFrase.\na\tb\tc\n", r"tiny\.tsv:2: expected 2 tab-separated columns .* got 3"),
    ("a\tb\tc\t1\t1\t0\n1\tFrase.\n", r"tiny\.tsv:1: candidate triple before the first sentence line"),
    ("1\tA frase.\n2\tA  frase\n", r"tiny\.tsv:2: sentence repeats the one at line 1"),
    ("1\tFrase.\na\t \tc\t1\t1\t0\n", r"tiny\.tsv:2: gold triple \(valid=1\) with an empty part"),
    ("\n\n", r"no sentence line"),
])
def test_gold_reader_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "tiny.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match=message):
        read_gold_tsv(path)


def test_predictions_tsv_round_trip_keeps_sentence_and_confidence_exactly(tmp_path):
    preds = [P("Ele disse: \"sim\"  e foi.", "Ele", "disse", "sim\tagora", 0.1 + 0.2),
             P(S3, "a", "b", "c", None)]
    path = tmp_path / "predictions.tsv"
    write_predictions_tsv(preds, path)
    assert path.read_text(encoding="utf-8").splitlines()[0] == "sentence\tconfidence\targ1\trel\targ2"
    back = read_predictions_tsv(path)
    assert back[0].sentence == preds[0].sentence          # quotes and double space kept as is
    assert back[0].confidence == 0.1 + 0.2                 # float written with repr: exact
    assert back[0].arg2 == "sim agora"                     # a tab inside a part cannot survive a TSV
    assert back[1].confidence is None


@pytest.mark.parametrize("text, message", [
    ("sentence\targ1\n", r"p\.tsv:1: the header must be"),
    ("sentence\tconfidence\targ1\trel\targ2\nS\t0.5\ta\tb\n", r"p\.tsv:2: expected 5 tab-separated"),
    ("sentence\tconfidence\targ1\trel\targ2\nS\talta\ta\tb\tc\n", r"p\.tsv:2: confidence must be"),
    ("sentence\tconfidence\targ1\trel\targ2\nS\tnan\ta\tb\tc\n", r"p\.tsv:2: confidence must be"),
    ("", r"p\.tsv:1: empty file"),
])
def test_predictions_reader_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "p.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match=message):
        read_predictions_tsv(path)


# ---------------------------------------------------------------- normalization and matchers


def test_case_and_contractions_under_each_normalization():
    assert tokens("Do Banco da Escócia", "raw") == ["Do", "Banco", "da", "Escócia"]
    assert tokens("Do Banco da Escócia", "pt") == ["de", "o", "banco", "de", "a", "escócia"]
    assert tokens("de o banco de a Escócia", "pt") == tokens("do Banco da ESCÓCIA", "pt")
    assert tokens("pelo rio, ao mar", "pt") == ["por", "o", "rio", ",", "a", "o", "mar"]
    assert tokens("3%", "pt") == ["3", "%"] and tokens("3%", "raw") == ["3%"]
    # the 2018 matcher is case-sensitive and knows no contractions
    assert not exact_match(("o Banco", "é", "x"), ("O banco", "é", "x"), "raw")
    assert exact_match(("o Banco", "é", "x"), ("O banco", "é", "x"), "pt")
    assert not exact_match(("a casa do Pedro", "é", "azul"), ("a casa de o Pedro", "é", "azul"), "raw")
    assert exact_match(("a casa do Pedro", "é", "azul"), ("a casa de o Pedro", "é", "azul"), "pt")


def test_sentence_key_ignores_spaces_punctuation_and_symbols_but_not_case():
    assert sentence_key("Teoricamente, um casal ganha 3% em £12,000.") == \
        sentence_key("Teoricamente um casal ganha 3 % em £ 12000")
    assert sentence_key("O gato.") != sentence_key("o gato.")


def test_lexical_coverage_by_hand():
    gold = ("o gato", "come", "o peixe")            # bag: come o gato o peixe (5 tokens)
    # every gold token has one equal predicted token: 5 pairs / 5
    assert lexical_coverage(gold, ("o gato", "come", "peixe"), "raw") == 1.0
    # raw: 'O' != 'o', 'comeu' != 'come' -> pairs gato, peixe = 2 / 5 = 0.4, no match
    assert lexical_coverage(gold, ("O gato", "comeu", "um peixe"), "raw") == pytest.approx(0.4)
    assert not lexical_match(gold, ("O gato", "comeu", "um peixe"), "raw")
    # pt: 'o' twice in gold, once predicted -> o, gato, o, peixe = 4 / 5 = 0.8, match
    assert lexical_coverage(gold, ("O gato", "comeu", "um peixe"), "pt") == pytest.approx(0.8)
    assert lexical_match(gold, ("O gato", "comeu", "um peixe"), "pt")


def test_lexical_counts_token_pairs_and_needs_more_than_half():
    gold = ("a b", "c", "d")                         # bag: c a b d (4 tokens)
    # 'a' predicted three times: 3 equal (gold, predicted) pairs -> 3 / 4 = 0.75 > 0.5
    assert lexical_coverage(gold, ("a a a", "x", "y"), "raw") == 0.75
    assert lexical_match(gold, ("a a a", "x", "y"), "raw")
    # exactly half is not enough: c, a -> 2 / 4
    assert lexical_coverage(gold, ("a", "c", "z"), "raw") == 0.5
    assert not lexical_match(gold, ("a", "c", "z"), "raw")
    assert lexical_coverage(gold, ("", "", ""), "raw") == 0.0


def test_strict_needs_two_of_three_parts_equal_without_spaces_and_punctuation():
    gold = ("a casa do Pedro", "é", "azul")
    assert squashed_part("a casa, do Pedro!", "raw") == "acasadoPedro"
    assert strict_match(gold, ("a casa, do  Pedro", "é", "verde"), "raw")       # arg1 + rel
    assert strict_match(gold, ("a casa de o Pedro", "é", "azul."), "raw")       # rel + arg2
    assert not strict_match(gold, ("a casa de o Pedro", "é", "verde"), "raw")   # rel only
    assert strict_match(gold, ("A casa de o Pedro", "era", "Azul"), "pt")      # arg1 + arg2 in pt
    assert not strict_match(gold, ("A casa de o Pedro", "era", "Azul"), "raw")
    # position by position: the right words in the wrong slots do not count
    assert not strict_match(gold, ("azul", "é", "a casa do Pedro"), "raw")


def test_carb_credit_by_hand():
    gold = ("o gato", "come", "o peixe")             # 2 + 1 + 2 = 5 gold tokens
    # overlaps 2, 1, 1 = 4; predicted tokens 2 + 1 + 1 = 4 -> precision 4/4, recall 4/5
    assert carb_credit(gold, ("o gato", "come", "peixe"), "raw") == (1.0, 0.8)
    # overlaps 2, 1, 2 = 5; predicted tokens 2 + 1 + 5 = 8 -> precision 5/8, recall 5/5
    assert carb_credit(gold, ("o gato", "come", "o peixe e o pão"), "raw") == (5 / 8, 1.0)
    assert carb_credit(gold, ("o gato", "come", "a sardinha"), "raw") is None   # no shared arg2 word
    assert carb_credit(gold, ("o gato", "devora", "o peixe"), "raw") is None    # no shared rel word


# ---------------------------------------------------------------- scorer


def predictions_with_duplicate_and_tie():
    return [
        P(S1, "o gato", "come", "o peixe", 0.9),      # hit (gold 1)
        P(S1, "o gato", "come", "o peixe", 0.8),      # duplicate: gold 1 already taken -> miss
        # gold 2 (bag é a casa do Pedro azul) is taken by the first matching prediction in order:
        # this one (é a casa Pedro = 4/6 > 0.5), although the next is its exact copy
        P(S2, "a casa", "é", "de o Pedro", 0.7),
        P(S2, "a casa do Pedro", "é", "azul", 0.7),   # tie at 0.7; takes gold 3 (é a casa Pedro 4/6)
        P(S3, "ele", "choveu", "ontem", 0.2),         # sentence without gold -> miss
    ]


def test_point_and_curve_by_hand_with_duplicate_and_tie(bench):
    s = score(bench, predictions_with_duplicate_and_tie(), matcher="lexical", normalization="raw")
    # 3 hits over 5 predictions and 3 gold
    assert (s.matched_gold, s.matched_predictions, s.n_predictions, s.n_gold) == (3, 3, 5, 3)
    assert s.precision == pytest.approx(3 / 5)
    assert s.recall == pytest.approx(1.0)
    assert s.f1 == pytest.approx(0.75)                       # 2 * .6 * 1 / 1.6
    # one point per distinct confidence; the tied 0.7 predictions enter together
    assert [c.threshold for c in s.curve] == [0.9, 0.8, 0.7, 0.2]
    assert [c.n_predictions for c in s.curve] == [1, 2, 4, 5]
    assert [c.precision for c in s.curve] == pytest.approx([1.0, 0.5, 0.75, 0.6])
    assert [c.recall for c in s.curve] == pytest.approx([1 / 3, 1 / 3, 1.0, 1.0])
    # F1 at 0.7: 2 * .75 * 1 / 1.75 = 6/7, the best
    assert s.best_threshold == 0.7 and s.best_f1 == pytest.approx(6 / 7)
    # AUC: from (0, 1) to (1/3, 1): 1/3; to (1/3, .5): 0; to (1, .75): 2/3 * (.5 + .75) / 2 = 5/12
    assert s.auc == pytest.approx(1 / 3 + 5 / 12)


def test_tied_confidences_do_not_depend_on_prediction_order(bench):
    preds = predictions_with_duplicate_and_tie()
    swapped = preds[:2] + [preds[3], preds[2]] + preds[4:]
    a = score(bench, preds, normalization="raw")
    b = score(bench, swapped, normalization="raw")
    assert (a.precision, a.recall, a.auc, a.best_threshold) == (b.precision, b.recall, b.auc,
                                                                b.best_threshold)


def test_sentence_missing_from_predictions_still_counts_its_gold(bench):
    preds = [p for p in predictions_with_duplicate_and_tie() if p.sentence != S2]
    s = score(bench, preds, normalization="raw")
    # 1 hit (gold 1) over 3 predictions; recall over all 3 gold triples
    assert (s.precision, s.recall) == pytest.approx((1 / 3, 1 / 3))
    assert s.f1 == pytest.approx(1 / 3)


def test_empty_predictions(bench):
    for key, s in score_all(bench, []).items():
        assert (s.precision, s.recall, s.f1, s.auc) == (0.0, 0.0, 0.0, 0.0), key
        assert s.best_threshold is None and len(s.curve) == 1 and s.curve[0].n_predictions == 0


def test_predictions_without_confidence_enter_only_at_the_last_point(bench):
    preds = [P(S1, "o gato", "come", "o peixe", None),   # hit, no confidence
             P(S2, "a casa", "é", "verde", 0.5)]          # miss (é a casa = 3/6)
    s = score(bench, preds, normalization="raw")
    assert [c.threshold for c in s.curve] == [0.5, None]
    assert [c.precision for c in s.curve] == pytest.approx([0.0, 0.5])
    assert [c.recall for c in s.curve] == pytest.approx([0.0, 1 / 3])
    assert s.best_threshold is None


def test_auc_starts_at_recall_0_with_the_first_points_precision(bench):
    preds = [P(S1, "o gato", "come", "o peixe", 0.5),     # hit
             P(S3, "ele", "choveu", "ontem", 0.5)]        # miss, same confidence
    s = score(bench, preds, normalization="raw")
    assert len(s.curve) == 1 and (s.precision, s.recall) == pytest.approx((0.5, 1 / 3))
    # one point: the area is the rectangle from (0, 0.5) to (1/3, 0.5), not a ramp from (0, 1)
    assert s.auc == pytest.approx(1 / 6)


def test_greedy_one_to_one_in_gold_order(tmp_path):
    path = tmp_path / "g.tsv"
    path.write_text("1\tO rei visitou Lisboa e o Porto.\n"
                    "o rei\tvisitou\tLisboa\t1\t1\t0\n"
                    "o rei\tvisitou\to Porto\t1\t1\t0\n", encoding="utf-8")
    bench = read_gold_tsv(path)
    text = bench.sentences[0].text
    preds = [P(text, "o rei", "visitou", "Lisboa e o Porto", 0.9),   # matches both gold triples
             P(text, "rei", "visitou", "Lisboa", 0.8)]              # matches the first only (2/5)
    s = score(bench, preds, normalization="raw")
    # gold 1 takes the first prediction; gold 2 finds no free matching one: 1 hit, not 2
    assert (s.matched_gold, s.precision, s.recall) == (1, 0.5, 0.5)


def test_prediction_for_unknown_sentence_is_an_error(bench):
    with pytest.raises(BenchmarkFormatError, match="prediction 2 is for a sentence that is not in"):
        score(bench, [P(S1, "a", "b", "c"), P("Outra frase.", "a", "b", "c")])


def test_sentence_pairing_ignores_spacing_and_punctuation(bench):
    s = score(bench, [P("O gato come o peixe", "o gato", "come", "o peixe", 1.0)], normalization="raw")
    assert s.matched_gold == 1


def test_carb_scoring_by_hand_one_to_one_precision(bench):
    preds = [P(S1, "o gato", "come", "peixe", 0.9),       # credit (1.0, 0.8) on gold 1
             P(S1, "o gato", "come", "peixe", 0.5)]       # same credit, but precision is one-to-one
    s = score(bench, preds, matcher="carb", normalization="raw")
    # t=0.9: P = 1/1, R = 0.8/3; t=0.5: P = (1 + 0)/2, R = 0.8/3 (best recall per gold, once)
    assert [c.precision for c in s.curve] == pytest.approx([1.0, 0.5])
    assert [c.recall for c in s.curve] == pytest.approx([0.8 / 3, 0.8 / 3])
    assert s.f1 == pytest.approx(2 * 0.5 * (0.8 / 3) / (0.5 + 0.8 / 3))


def test_normalization_changes_lexical_hits(bench):
    preds = [P(S1, "O Gato", "Come", "O Peixe", 1.0)]   # bag: Come O Gato O Peixe vs come o gato o peixe
    assert score(bench, preds, normalization="raw").matched_gold == 0
    assert score(bench, preds, normalization="pt").matched_gold == 1


# ---------------------------------------------------------------- the shipped benchmark


def test_bundled_pud100_counts_match_the_data_readme():
    bench = load_benchmark("pud100")
    assert len(bench.sentences) == 100
    assert bench.n_gold == 136
    assert bench.n_sentences_without_gold == 33
    assert [s.sentence_id for s in bench.sentences] == [str(i) for i in range(201, 301)]


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data not present")
def test_bundled_pud100_is_the_shared_gold_file():
    bundled = load_benchmark("pud100")
    shared = read_gold_tsv(DATA / "pud100" / "pud100_gold.tsv")
    assert (DATA / "pud100" / "pud100_gold.tsv").read_bytes() == Path(bundled.source).read_bytes()
    assert shared.n_gold == 136 and len(shared.sentences) == 100


def test_gold_scored_against_itself_is_perfect_for_every_matcher():
    bench = load_benchmark("pud100")
    preds = [P(s.text, *t.parts, 1.0) for s in bench.sentences for t in s.triples]
    for key, s in score_all(bench, preds).items():
        assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0), key


# ---------------------------------------------------------------- labels as written

FORMAS = "Alan, que estuda na UFBA, é membro da Formas."
FORMAS_GOLD = f"""1\t{FORMAS}
Alan\té membro de\ta Formas\t1\t1\t0
Alan\testuda em\ta UFBA\t1\t1\t0
"""


def test_as_written_and_split_labels_score_identically_under_pt(tmp_path):
    from ptoie.extract.parser import parse_answer

    path = tmp_path / "formas.tsv"
    path.write_text(FORMAS_GOLD, encoding="utf-8")    # gold split as PUD-100's: 'é membro de | a Formas'
    bench = read_gold_tsv(path)
    # the model's strings: a contraction split inside a part, and one split between two parts
    model = ["alan | é membro | de a Formas", "Alan | estuda em | a UFBA"]
    labels = [parse_answer(line, FORMAS).triples[0].parts for line in model]
    assert labels == [("Alan", "é membro", "da Formas"), ("Alan", "estuda", "na UFBA")]
    split = [P(FORMAS, *(p.strip() for p in line.split("|")), c) for line, c in zip(model, (0.9, 0.4))]
    written = [P(FORMAS, *parts, c) for parts, c in zip(labels, (0.9, 0.4))]
    for matcher in ("lexical", "strict", "exact", "carb"):
        a = score(bench, split, matcher=matcher, normalization="pt")
        b = score(bench, written, matcher=matcher, normalization="pt")
        assert a.as_dict(with_curve=True) == b.as_dict(with_curve=True), matcher
    # and not 0 == 0: part by part, 'é membro | da Formas' is the gold's 'é membro de | a Formas'
    # (the preposition ending a part moves to the next part when they form a contraction)
    for matcher in ("lexical", "strict", "exact"):
        assert score(bench, written, matcher=matcher, normalization="pt").matched_gold == 2, matcher
    assert score(bench, written, matcher="carb", normalization="pt").f1 == 1.0
    # under raw the spelling matters (da != de a): that is what pt normalisation removes
    assert score(bench, written, matcher="strict", normalization="raw").matched_gold == 0


def test_part_tokens_move_a_split_contraction_to_the_next_part():
    from ptoie.evaluation.matchers import part_tokens

    assert part_tokens(("Alan", "é membro de", "a Formas"), "pt") == \
        part_tokens(("Alan", "é membro", "da Formas"), "pt") == [["alan"], ["é", "membro"], ["de", "a", "formas"]]
    # only a preposition + article/pronoun pair moves, and a part keeps at least one token
    assert part_tokens(("Alan", "mora em", "Salvador"), "pt") == [["alan"], ["mora", "em"], ["salvador"]]
    assert part_tokens(("Alan", "de", "a Formas"), "pt") == [["alan"], ["de"], ["a", "formas"]]
    assert part_tokens(("Alan", "é membro de", "a Formas"), "raw") == [["Alan"], ["é", "membro", "de"], ["a", "Formas"]]


# ---------------------------------------------------------------- gold without arg2

NAVIO = "O navio afundou ontem no porto."
TWO_PART_GOLD = f"""1\t{NAVIO}
O navio\tafundou\t\t1\t1\t0
O navio\tafundou\tem o porto\t1\t0\t0
2\t{S1}
o gato\tcome\to peixe\t1\t1\t0
"""


@pytest.fixture()
def two_part(tmp_path):
    path = tmp_path / "two_part_gold.tsv"
    path.write_text(TWO_PART_GOLD, encoding="utf-8")
    return path


def test_gold_reader_accepts_an_empty_arg2_but_not_an_empty_arg1_or_rel(two_part, tmp_path):
    bench = read_gold_tsv(two_part)
    assert bench.sentences[0].triples[0].parts == ("O navio", "afundou", "")
    assert not bench.sentences[0].triples[0].has_arg2 and bench.sentences[1].triples[0].has_arg2
    assert bench.n_gold == 2 and bench.n_gold_without_arg2 == 1
    assert bench.summary()["gold_triples_without_arg2"] == 1
    bad = tmp_path / "bad.tsv"
    bad.write_text(f"1\t{NAVIO}\n\tafundou\t\t1\t1\t0\n", encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match=r"bad\.tsv:2: .*empty part: arg1 and rel are required"):
        read_gold_tsv(bad)


def test_two_part_gold_under_each_matcher_by_hand():
    gold = ("O navio", "afundou", "")
    # lexical: gold tokens are 'afundou O navio' only (3); the prediction's arg2 is just more bag
    assert lexical_coverage(gold, ("O navio", "afundou", "ontem"), "raw") == 1.0
    assert lexical_coverage(gold, ("o barco", "afundou", "ontem"), "raw") == pytest.approx(1 / 3)
    assert lexical_coverage(gold, ("o barco", "afundou", "ontem"), "pt") == pytest.approx(2 / 3)
    # strict: both parts the gold has must be equal; an empty predicted arg2 is no free part
    assert strict_match(gold, ("O navio", "afundou", "ontem no porto"), "raw")
    assert not strict_match(gold, ("O navio", "naufragou", "ontem"), "raw")
    assert not strict_match(gold, ("Um navio", "afundou", ""), "raw")
    # exact: arg1 and rel as token sequences, the predicted arg2 not compared
    assert exact_match(gold, ("o navio", "afundou", "ontem"), "pt")
    assert not exact_match(gold, ("o navio", "afundou", "ontem"), "raw")      # 'o' != 'O'
    # carb (CaRB's linient_tuple_match with a one-argument reference): overlaps rel 1 + arg1 2 = 3
    # over the predicted rel + arg1 tokens (1 + 2) and the gold's (1 + 2); arg2 is left out of both
    assert carb_credit(gold, ("O navio", "afundou", "ontem no porto"), "raw") == (1.0, 1.0)
    # 'O navio grande': 3 overlapping of 1 + 3 predicted -> precision 3/4, recall 3/3
    assert carb_credit(gold, ("O navio grande", "afundou", "ontem"), "raw") == (0.75, 1.0)
    # no arg1 word shared: no credit, although the prediction's arg2 holds the words
    assert carb_credit(gold, ("Ele", "afundou", "O navio"), "raw") is None
    # the same prediction against a 3-part gold still needs a shared arg2 word
    assert carb_credit(("O navio", "afundou", "em o porto"), ("O navio", "afundou", "ontem"), "raw") is None


def test_two_part_gold_scored_end_to_end(two_part):
    bench = read_gold_tsv(two_part)
    preds = [P(NAVIO, "O navio", "afundou", "ontem", 0.9),       # lexical hit of gold 1 (3/3)
             P(S1, "o gato", "come", "o peixe e o pão", 0.8)]     # lexical hit of gold 2
    lex = score(bench, preds, matcher="lexical", normalization="raw")
    assert (lex.precision, lex.recall) == (1.0, 1.0)
    assert score(bench, preds, matcher="strict", normalization="raw").matched_gold == 2
    carb = score(bench, preds, matcher="carb", normalization="raw")
    # gold 1: (1.0, 1.0) as above; gold 2: overlaps 2 + 1 + 2 = 5 of 2 + 1 + 5 predicted -> 5/8, 5/5
    assert carb.precision == pytest.approx((1.0 + 5 / 8) / 2)
    assert carb.recall == pytest.approx(1.0)
    # the gold scored against itself (empty arg2 included) is perfect for every matcher
    itself = [P(s.text, *t.parts, 1.0) for s in bench.sentences for t in s.triples]
    for key, s in score_all(bench, itself).items():
        assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0), key


# ---------------------------------------------------------------- predictions per sentence


def test_per_sentence_distribution_by_hand(bench):
    from ptoie.evaluation import per_sentence
    from ptoie.evaluation.run import format_per_sentence, per_sentence_distribution

    assert per_sentence_distribution([0, 1, 2, 3, 7, 0]) == {
        "mean": 13 / 6, "sentences": {"0": 2, "1": 1, "2": 1, "3+": 2}}
    assert per_sentence_distribution([]) == {"mean": 0.0, "sentences": {"0": 0, "1": 0, "2": 0, "3+": 0}}
    # tiny bench: gold 1, 2, 0 triples; predictions 3 for S1, none for S2, 1 for S3
    preds = [P(S1, "a", "b", "c"), P(S1, "d", "e", "f"), P(S1, "g", "h", "i"), P(S3, "j", "k", "l")]
    stats = per_sentence(bench, preds)
    assert stats == {"predictions": {"mean": 4 / 3, "sentences": {"0": 1, "1": 1, "2": 0, "3+": 1}},
                     "gold": {"mean": 1.0, "sentences": {"0": 1, "1": 1, "2": 1, "3+": 0}},
                     "without_gold": {"sentences": 1, "with_predictions": 1, "predictions": 1}}
    assert format_per_sentence(stats) == (
        "per sentence: predictions mean 1.33 (0: 1, 1: 1, 2: 0, 3+: 1); "
        "gold mean 1.00 (0: 1, 1: 1, 2: 1, 3+: 0) (sentences with 0, 1, 2, 3+ triples); "
        "1 predictions for 1 of the 1 sentences without gold")


def test_per_sentence_of_pud100_gold():
    from ptoie.evaluation import per_sentence

    stats = per_sentence(load_benchmark("pud100"), [])
    assert stats["gold"]["mean"] == pytest.approx(1.36)
    assert stats["gold"]["sentences"]["0"] == 33 and sum(stats["gold"]["sentences"].values()) == 100
    assert stats["predictions"] == {"mean": 0.0, "sentences": {"0": 100, "1": 0, "2": 0, "3+": 0}}
    assert stats["without_gold"] == {"sentences": 33, "with_predictions": 0, "predictions": 0}

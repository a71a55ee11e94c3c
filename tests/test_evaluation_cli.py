"""``ptoie-eval`` (ptoie/cli/evaluate.py): report directory, --predictions mode, exit codes, and one run of
the real embedded model on a two-sentence gold file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ptoie.cli.evaluate import main
from ptoie.evaluation import Prediction, read_predictions_tsv, write_predictions_tsv
from ptoie.resources import embedded_base_gguf

REPO = Path(__file__).resolve().parents[1]

S1 = "Machado de Assis escreveu Dom Casmurro."
S2 = "A cidade do Porto fica no norte de Portugal."
S3 = "Choveu muito ontem."
GOLD = f"""1\t{S1}
Machado de Assis\tescreveu\tDom Casmurro\t1\t1\t0
2\t{S2}
a cidade de o Porto\tfica em\to norte de Portugal\t1\t1\t0
A cidade do Porto\tfica\tno norte\t1\t1\t0
3\t{S3}
"""


@pytest.fixture()
def gold(tmp_path):
    path = tmp_path / "gold.tsv"
    path.write_text(GOLD, encoding="utf-8")
    return path


@pytest.fixture()
def predictions(tmp_path):
    """3 predictions (confidence 0.9, 0.6, 0.3); 2 are hits under lexical/pt -> P 2/3, R 2/3."""
    path = tmp_path / "in.tsv"
    write_predictions_tsv([
        Prediction(S1, "Machado de Assis", "escreveu", "Dom Casmurro", 0.9),   # = gold 1
        # = gold 3, but gold 2 comes first and matches it: its 11 pt tokens 'fica em a cidade de o
        # porto o norte de portugal' meet 'fica a cidade de o porto em o norte' in 12 pairs > 5.5
        Prediction(S2, "A cidade do Porto", "fica", "no norte", 0.6),
        Prediction(S3, "ontem", "choveu", "muito", 0.3),                        # no gold: miss
    ], path)
    return path


def run(argv):
    return main([str(a) for a in argv])


def test_predictions_mode_writes_the_report_directory(gold, predictions, tmp_path, capsys):
    out = tmp_path / "report"
    assert run(["--bench", gold, "--predictions", predictions, "--out", out]) == 0
    assert "no gate" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    # S1 hit, S2 hit (exact copy of gold 3, lexical match of gold 2 first: fica a cidade do porto
    # no norte vs gold 2's 'fica em a cidade de o porto o norte de portugal' -> 7 of 11 pt tokens), S3 miss
    assert report["counts"] == {"sentences": 3, "gold_triples": 3, "predictions": 3,
                                "sentences_with_predictions": 3, "matched_gold": 2,
                                "matched_predictions": 2, "rejected_output_lines": None,
                                "unsupported_triples": None}
    assert (report["precision"], report["recall"]) == pytest.approx((2 / 3, 2 / 3))
    assert report["f1"] == pytest.approx(2 / 3)
    assert report["best_threshold"] == 0.6 and report["best_f1"] == pytest.approx(0.8)  # P 1, R 2/3
    assert report["matcher"] == "lexical" and report["normalization"] == "pt"
    assert set(report["matchers"]) == {f"{m}/{n}" for m in ("lexical", "strict", "exact", "carb")
                                       for n in ("raw", "pt")}
    assert report["matchers"]["exact/raw"]["matched_gold"] == 2
    assert report["gate"] == {"matcher": "lexical", "normalization": "pt", "min_f1": None,
                              "f1": report["f1"], "passed": True}
    assert [p["threshold"] for p in report["pr_curve"]] == [0.9, 0.6, 0.3]
    assert (out / "pr_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_predictions_tsv(out / "predictions.tsv") == read_predictions_tsv(predictions)


def test_predictions_tsv_carries_the_gold_sentence_text(gold, tmp_path, capsys):
    loose = tmp_path / "loose.tsv"
    out = tmp_path / "r"
    # paired with the gold sentence although spacing and punctuation differ ...
    write_predictions_tsv([Prediction("Machado  de Assis escreveu Dom Casmurro", "a", "b", "c", 1.0)], loose)
    assert run(["--bench", gold, "--predictions", loose, "--out", out]) == 0
    # ... and written with the gold's text
    assert [p.sentence for p in read_predictions_tsv(out / "predictions.tsv")] == [S1]
    # case is not ignored when pairing sentences: an unknown sentence is an error
    write_predictions_tsv([Prediction("machado de Assis escreveu Dom Casmurro.", "a", "b", "c", 1.0)], loose)
    assert run(["--bench", gold, "--predictions", loose, "--out", out]) == 2
    assert "prediction 1 is for a sentence that is not in benchmark" in capsys.readouterr().err


@pytest.mark.parametrize("min_f1, code, word", [(0.6, 0, "PASS"), (0.7, 1, "FAIL")])
def test_gate_exit_codes(gold, predictions, tmp_path, capsys, min_f1, code, word):
    # F1 = 2/3 = 0.667
    rc = run(["--bench", gold, "--predictions", predictions, "--out", tmp_path / "r",
              "--min-f1", min_f1])
    assert rc == code
    line = capsys.readouterr().out.strip().splitlines()[-1]   # the verdict is the last line
    assert line.startswith(f"ptoie-eval: {word}") and "F1 0.6667" in line
    report = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert report["gate"]["passed"] is (code == 0) and report["gate"]["min_f1"] == min_f1


def test_matcher_option_picks_the_gate_score(gold, tmp_path):
    near = tmp_path / "near.tsv"   # gold 1 with a trailing period: lexical and strict match, exact not
    write_predictions_tsv([Prediction(S1, "Machado de Assis", "escreveu", "Dom Casmurro.", 1.0)], near)
    # lexical/pt: 1 hit, P 1, R 1/3 -> F1 0.5
    assert run(["--bench", gold, "--predictions", near, "--out", tmp_path / "a", "--min-f1", 0.4]) == 0
    assert run(["--bench", gold, "--predictions", near, "--out", tmp_path / "b", "--min-f1", 0.4,
                "--matcher", "exact", "--normalization", "raw"]) == 1
    report = json.loads((tmp_path / "b" / "report.json").read_text(encoding="utf-8"))
    assert (report["matcher"], report["normalization"], report["f1"]) == ("exact", "raw", 0.0)
    assert report["matchers"]["exact/pt"]["f1"] == 0.0        # pt keeps '.' as a token
    assert report["matchers"]["strict/raw"]["f1"] == pytest.approx(0.5)   # '.' removed
    assert report["matchers"]["lexical/raw"]["f1"] == pytest.approx(0.5)  # 5 of 6 tokens


@pytest.mark.parametrize("argv, message", [
    (["--predictions", "p.tsv", "--model", "m.gguf"], "cannot be combined with --model"),
    (["--lora", "a.gguf"], "--lora needs --model"),
    (["--predictions", "missing.tsv"], "predictions file not found: missing.tsv"),
    (["--bench", "nope", "--predictions", "p.tsv"], "neither a bundled name"),
    (["--min-f1", "1.5", "--predictions", "p.tsv"], "--min-f1 must be between 0 and 1"),
])
def test_usage_and_data_errors_exit_2_with_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.tsv").write_text("sentence\tconfidence\targ1\trel\targ2\n", encoding="utf-8")
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.strip().splitlines()[-1].startswith("ptoie-eval: error:")


def test_greedy_and_temperature_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exit_:
        run(["--greedy", "--temperature", "0.7"])
    assert exit_.value.code == 2
    assert "ptoie-eval: error: argument --temperature: not allowed with argument --greedy" in capsys.readouterr().err


def test_bad_model_exits_2_in_a_real_process(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    proc = subprocess.run([sys.executable, "-m", "ptoie.cli.evaluate", "--model", str(bad), "--out",
                           str(tmp_path / "r")], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("ptoie-eval: error: model:")
    assert "not a GGUF" in proc.stderr and str(bad) in proc.stderr


def test_below_gate_exits_1_in_a_real_process(gold, predictions, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ptoie.cli.evaluate", "--bench", str(gold), "--predictions",
                           str(predictions), "--out", str(tmp_path / "r"), "--min-f1", "0.9"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("ptoie-eval: FAIL: F1 0.6667 is below the gate --min-f1 0.9")


@pytest.mark.slow
def test_real_embedded_model_end_to_end(gold, tmp_path):
    out = tmp_path / "model"
    # --no-grammar: grammar-constrained sampling is several times slower on CPU, and the grammar
    # has its own tests; here the point is the evaluation pipeline on real model output
    rc = run(["--model", "embedded:smollm2", "--bench", gold, "--out", out, "--greedy",
              "--max-tokens", 24, "--n-parallel", 3, "--no-grammar", "--quiet"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["system"]["grammar"] is False
    # embedded:smollm2 without --lora is the bare base model, even if the shipped default has an adapter
    assert report["model_id"] == embedded_base_gguf().name
    assert report["system"]["lora_path"] is None
    assert report["sampling"]["temperature"] == 0.0 and report["sampling"]["max_tokens"] == 24
    assert report["seconds"] > 0 and report["sentences_per_second"] == pytest.approx(3 / report["seconds"])
    assert report["generated_tokens"] > 0
    predicted = read_predictions_tsv(out / "predictions.tsv")
    assert len(predicted) == report["counts"]["predictions"]
    assert {p.sentence for p in predicted} <= {S1, S2, S3}   # sentence text exactly as in the gold
    # the written predictions.tsv, scored alone, gives the same numbers
    rescored = tmp_path / "rescored"
    assert run(["--bench", gold, "--predictions", out / "predictions.tsv", "--out", rescored]) == 0
    again = json.loads((rescored / "report.json").read_text(encoding="utf-8"))
    assert again["matchers"] == report["matchers"]


def test_report_and_summary_show_predictions_per_sentence(gold, predictions, tmp_path, capsys):
    out = tmp_path / "r"
    assert run(["--bench", gold, "--predictions", predictions, "--out", out]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    # one prediction for each of the 3 sentences; gold 1, 2 and 0 triples
    assert report["per_sentence"] == {
        "predictions": {"mean": 1.0, "sentences": {"0": 0, "1": 3, "2": 0, "3+": 0}},
        "gold": {"mean": 1.0, "sentences": {"0": 1, "1": 1, "2": 1, "3+": 0}},
        "without_gold": {"sentences": 1, "with_predictions": 1, "predictions": 1}}
    assert lines[-2] == ("ptoie-eval: per sentence: predictions mean 1.00 (0: 0, 1: 3, 2: 0, 3+: 0); "
                         "gold mean 1.00 (0: 1, 1: 1, 2: 1, 3+: 0) (sentences with 0, 1, 2, 3+ triples); "
                         "1 predictions for 1 of the 1 sentences without gold")
    assert lines[-1].startswith("ptoie-eval: no gate")


def test_gold_file_with_an_empty_arg2_is_accepted_and_scored(tmp_path, capsys):
    gold = tmp_path / "two_part.tsv"   # PUD-100 format; the first gold tuple has no arg2
    gold.write_text(f"1\t{S3}\nO céu\tchoveu\t\t1\t1\t0\n2\t{S1}\n"
                    "Machado de Assis\tescreveu\tDom Casmurro\t1\t1\t0\n", encoding="utf-8")
    preds = tmp_path / "p.tsv"
    write_predictions_tsv([Prediction(S3, "O céu", "choveu", "muito ontem", 0.9),
                           Prediction(S1, "Machado", "escreveu", "Dom Casmurro", 0.5)], preds)
    out = tmp_path / "r"
    assert run(["--bench", gold, "--predictions", preds, "--out", out, "--matcher", "carb"]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["benchmark"]["gold_triples_without_arg2"] == 1
    # carb/pt: tuple 1 compares rel + arg1 only: 3 of 3 tokens both ways -> (1, 1); tuple 2:
    # overlaps 1 + 1 + 2 = 4 of 4 predicted, 6 gold -> (1, 4/6)
    carb = report["matchers"]["carb/pt"]
    assert carb["precision"] == pytest.approx(1.0)
    assert carb["recall"] == pytest.approx((1 + 4 / 6) / 2)
    # lexical: gold 1's tokens are 'choveu O céu' (3 of 3 covered)
    assert report["matchers"]["lexical/raw"]["matched_gold"] == 2
    # strict: tuple 1 has arg1 and rel equal (both of its parts), tuple 2 rel and arg2 (2 of 3)
    assert report["matchers"]["strict/raw"]["matched_gold"] == 2
    # exact: tuple 1's arg1 and rel are equal (its arg2 is not compared); tuple 2's arg1 differs
    assert report["matchers"]["exact/raw"]["matched_gold"] == 1

"""One set of model/decoding flags for ``ptoie extract``, ``ptoie-eval`` and ``ptoie-batch``."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest

from ptoie.cli.batch import build_parser as batch_parser
from ptoie.cli.evaluate import build_parser as eval_parser
from ptoie.batch import BatchConfig
from ptoie.cli.main import build_parser, extractor_options

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--greedy", "--lora-merge", "none", "--top-k", "7", "--no-grammar", "--no-require-spans"]


def test_every_command_maps_the_same_flags_to_the_extractor():
    extract = extractor_options(build_parser().parse_args(["extract", "Ela canta.", *FLAGS]))
    evaluate = extractor_options(eval_parser().parse_args(FLAGS))
    batch_args = batch_parser().parse_args(["corpus", "--out", "kg.ttl", *FLAGS])
    batch = BatchConfig(**vars(batch_args) | {"inputs": tuple(batch_args.inputs)}).extractor_kwargs()
    for options in (extract, evaluate, batch):
        assert (options["temperature"], options["lora_merge"], options["top_k"], options["grammar"],
                options["require_spans"]) == (0.0, None, 7, False, False)
        assert (options["top_p"], options["min_p"], options["max_tokens"]) == (0.95, 0.05, 160)
    assert extract["n_ctx"] == evaluate["n_ctx"] == batch["n_ctx"] == 2048   # the Extractor's default


def test_defaults_are_the_extractors_and_bad_values_name_the_flag(capsys):
    options = extractor_options(build_parser().parse_args(["extract", "Ela canta."]))
    assert (options["model_path"], options["lora_merge"], options["temperature"]) == (None, "auto", 0.2)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["extract", "x", "--lora-merge", "q4_1"])
    assert "argument --lora-merge: choose from auto, q4_0, q8_0, f16, none" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["extract", "x", "--greedy", "--temperature", "0.5"])
    assert "not allowed with argument --greedy" in capsys.readouterr().err


def test_the_batch_job_defaults_are_the_extractors():
    """BatchConfig repeats the Extractor's decoding defaults as fields; they must not drift."""
    import dataclasses
    import inspect

    from ptoie import Extractor
    from ptoie.cli.main import EXTRACTOR_OPTIONS
    extractor = {name: p.default for name, p in inspect.signature(Extractor).parameters.items()}
    batch = {f.name: f.default for f in dataclasses.fields(BatchConfig)}
    for name in EXTRACTOR_OPTIONS:
        assert batch[name] == extractor[name], name
    assert extractor["end_bias"] == -2.0 and extractor["n_parallel"] == 16 and extractor["require_spans"]



def test_extract_sentence_file_missing_empty_or_not_utf8_is_one_line(tmp_path, capsys, monkeypatch):
    """Checked before any model is loaded: one line naming the file (or standard input), exit 2."""
    from ptoie.cli.main import main

    def run(path, stdin=b""):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        code = main(["extract", "--file", str(path)])
        return code, capsys.readouterr().err.strip()

    empty, garbage = tmp_path / "empty.txt", tmp_path / "garbage.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    garbage.write_bytes(b"Uma frase.\n\xff\xfe lixo\n")
    missing = tmp_path / "missing.txt"
    assert run(missing) == (2, f"ptoie extract: error: sentence file not found: {missing}")
    assert run(empty) == (2, f"ptoie extract: error: no sentence in {empty}")
    code, message = run(garbage)
    assert code == 2 and message.startswith(f"ptoie extract: error: {garbage}:2: not UTF-8 text")
    assert run("-", b"\n \n") == (2, "ptoie extract: error: no sentence in standard input")
    code, message = run("-", b"Uma frase.\n\xff lixo\n")
    assert code == 2 and message.startswith("ptoie extract: error: standard input:2: not UTF-8 text")
    assert main(["extract"]) == 2
    assert capsys.readouterr().err == "ptoie extract: error: give a sentence or --file\n"


SENTENCES = ["Machado de Assis escreveu Dom Casmurro.", "Lisboa é a capital de Portugal."]
SMOLLM2 = ["--model", "embedded:smollm2", "--lora", str(REPO / "models" / "ptoie-smollm2-135m-lora-f16.gguf"),
           "--lora-merge", "none", "--greedy", "--max-tokens", "48", "--threads", "1"]


@pytest.mark.slow
def test_extract_reads_standard_input_and_prints_every_format(capsys, monkeypatch):
    """The shipped SmolLM2 adapter on sentences piped in; jsonl, csv and json hold the same rows
    (the columns of schemas/triple.schema.json), the table one table per sentence."""
    from ptoie.cli.main import main
    from ptoie.schema import triple_field_names

    def run(fmt, *flags):
        stdin = "".join(f"{s}\n" for s in SENTENCES).encode()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        assert main(["extract", "--file", "-", "--format", fmt, *SMOLLM2, *flags]) == 0
        return capsys.readouterr().out

    records = [json.loads(line) for line in run("jsonl").splitlines()]
    assert records and {r["sentence"] for r in records} <= set(SENTENCES)
    assert all(list(r) == triple_field_names() and r["doc_id"] == "stdin" for r in records)
    assert json.loads(run("json")) == records
    rows = list(csv.DictReader(io.StringIO(run("csv"))))
    assert [(r["arg1"], r["rel"], r["arg2"]) for r in rows] == [(r["arg1"], r["rel"], r["arg2"])
                                                                 for r in records]
    monkeypatch.setenv("COLUMNS", "200")
    table = run("table")
    assert all(sentence in table for sentence in SENTENCES)
    assert run("table", "--max-tokens", "1").count("(no triples)") == len(SENTENCES)

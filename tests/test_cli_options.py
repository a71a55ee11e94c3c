"""One set of model/decoding flags for ``ptoie extract``, ``ptoie-eval`` and ``ptoie-batch``,
generated from the extractor's config dataclasses (ptoie.cli.options)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
from pathlib import Path

import pytest

from ptoie.batch import BatchConfig
from ptoie.cli.batch import build_parser as batch_parser
from ptoie.cli.evaluate import build_parser as eval_parser
from ptoie.cli.main import build_parser
from ptoie.cli.options import extractor_configs, field_docs, flag_of, other_options
from ptoie.extract.config import RUNTIME, ConfigError, DecodingConfig, ModelConfig

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--greedy", "--lora-merge", "none", "--top-k", "7", "--no-grammar", "--no-require-spans"]
CONFIG_FIELDS = [f for config in (ModelConfig, DecodingConfig) for f in dataclasses.fields(config)]


def _options(parser):
    return {option: action for action in parser._actions for option in action.option_strings}


def test_every_command_maps_the_same_flags_to_the_extractor():
    extract = extractor_configs(build_parser().parse_args(["extract", "Ela canta.", *FLAGS]))
    evaluate = extractor_configs(eval_parser().parse_args(FLAGS))
    batch_args = batch_parser().parse_args(["corpus", "--out", "kg.ttl", *FLAGS])
    batch = BatchConfig(**other_options(batch_args) | extractor_configs(batch_args)
                        | {"inputs": tuple(batch_args.inputs)})
    for configs in (extract, evaluate, {"model": batch.model, "decoding": batch.decoding}):
        model, decoding = configs["model"], configs["decoding"]
        assert (decoding.temperature, model.lora_merge, decoding.top_k, decoding.grammar,
                decoding.require_spans) == (0.0, None, 7, False, False)
        assert (decoding.top_p, decoding.min_p, decoding.max_tokens) == (0.95, 0.05, 160)
        assert model.n_ctx == 2048   # the config's default


@pytest.mark.parametrize("argv", [["extract", "x"], []], ids=["extract", "eval"])
def test_a_flag_for_each_field_whose_default_is_the_fields(argv):
    parser = build_parser() if argv else eval_parser()
    options = _options(parser._subparsers._group_actions[0].choices["extract"] if argv else parser)
    docs = field_docs(ModelConfig) | field_docs(DecodingConfig)
    for f in CONFIG_FIELDS:
        action = options[flag_of(f.name)]
        assert (action.dest, action.default) == (f.name, f.default), f.name
        assert action.help and docs[f.name], f.name   # every field documented, the doc is the help
    args = (build_parser().parse_args(argv) if argv else eval_parser().parse_args([]))
    configs = extractor_configs(args)
    assert configs == {"model": ModelConfig(), "decoding": DecodingConfig()}


def test_batch_flags_leave_the_runtime_fields_to_the_workers():
    options = _options(batch_parser())
    for f in CONFIG_FIELDS:
        assert (flag_of(f.name) in options) == (f.metadata["group"] != RUNTIME), f.name
    assert "--threads-per-worker" in options and "--threads" not in options


def test_flag_help_names_flags_and_choices():
    options = _options(build_parser()._subparsers._group_actions[0].choices["extract"])
    assert options["--lora"].help.startswith("llama.cpp LoRA-adapter GGUF applied on --model")
    assert options["--lora-merge"].metavar == "{auto,q4_0,q8_0,f16,none}"
    assert options["--n-ctx"].help.endswith("(default: %(default)s)")
    assert "--max-tokens" in options["--n-ctx"].help


def test_defaults_are_the_configs_and_bad_values_name_the_flag(capsys):
    configs = extractor_configs(build_parser().parse_args(["extract", "Ela canta."]))
    assert (configs["model"].model_path, configs["model"].lora_merge,
            configs["decoding"].temperature) == (None, "auto", 0.2)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["extract", "x", "--lora-merge", "q4_1"])
    assert "argument --lora-merge: choose from auto, q4_0, q8_0, f16, none" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["extract", "x", "--greedy", "--temperature", "0.5"])
    assert "not allowed with argument --greedy" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"^--end-bias must be <= 0 \(got 1\.0\)"):
        extractor_configs(build_parser().parse_args(["extract", "x", "--end-bias", "1"]))
    with pytest.raises(ConfigError, match=r"^--lora needs --model: "):
        extractor_configs(build_parser().parse_args(["extract", "x", "--lora", "a.gguf"]))
    with pytest.raises(ConfigError, match=r"^--n-batch must be >= --n-parallel "):
        extractor_configs(build_parser().parse_args(["extract", "x", "--n-batch", "2"]))


def test_extract_reports_a_bad_setting_in_one_line_naming_the_flag(capsys):
    from ptoie.cli.main import main

    assert main(["extract", "Olá.", "--n-parallel", "0"]) == 2
    assert capsys.readouterr().err.strip() == ("ptoie extract: error: --n-parallel must be >= 1 (got 0): "
                                               "1 decodes one sentence at a time")


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

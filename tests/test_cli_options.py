"""One set of model/decoding flags for ``ptoie extract``, ``ptoie-eval`` and ``ptoie-batch``."""

from __future__ import annotations

import pytest

from ptoie.cli.batch import build_parser as batch_parser
from ptoie.cli.evaluate import build_parser as eval_parser
from ptoie.batch import BatchConfig
from ptoie.cli.main import build_parser, extractor_options

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



def test_extract_sentence_file_missing_empty_or_not_utf8_is_one_line(tmp_path, capsys):
    """Checked before any model is loaded: one line naming the file, exit 2 (a SystemExit message
    is what Python prints on stderr)."""
    from ptoie.cli.main import main

    def run(path):
        try:
            code = main(["extract", "--file", str(path)])
        except SystemExit as exc:
            return 2, str(exc.code)
        return code, capsys.readouterr().err.strip()

    empty, garbage = tmp_path / "empty.txt", tmp_path / "garbage.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    garbage.write_bytes(b"Uma frase.\n\xff\xfe lixo\n")
    assert run(tmp_path / "missing.txt") == (2, f"ptoie: error: sentence file not found: {tmp_path / 'missing.txt'}")
    assert run(empty) == (2, f"ptoie: error: no sentence in {empty}")
    code, message = run(garbage)
    assert code == 2 and message.startswith(f"ptoie: error: {garbage}:2: not UTF-8 text")

"""The exit statuses of ptoie.exit_codes, as the commands return them: 3 when some input was
skipped, 4 when the output could not be written, 2 for bad input (one line naming it)."""

from __future__ import annotations

from pathlib import Path

from ptoie.cli import kg, main, train
from ptoie.exit_codes import EXIT_SKIPPED, EXIT_STOPPED, EXIT_USAGE

FIXTURES = Path(__file__).parent / "fixtures"
TRIPLES = FIXTURES / "news_triples.parquet"


def test_prepare_with_a_bad_block_is_done_but_skipped(tmp_path, capsys):
    out = tmp_path / "data.jsonl"
    assert train.main(["prepare", str(FIXTURES / "training" / "tiny.conll"), "--out", str(out)]) \
        == EXIT_SKIPPED
    assert out.is_file() and "bad block: " in capsys.readouterr().err


def test_training_inputs_that_cannot_be_read_are_usage_errors(tmp_path, capsys):
    missing = tmp_path / "missing.conll"
    assert train.main(["prepare", str(missing), "--out", str(tmp_path / "d.jsonl")]) == EXIT_USAGE
    assert capsys.readouterr().err.startswith(f"ptoie-train prepare: error: {missing}: ")
    assert train.main(["run", "--config", str(tmp_path / "none.yaml")]) == EXIT_USAGE
    assert capsys.readouterr().err == (f"ptoie-train run: error: {tmp_path / 'none.yaml'}: "
                                       "No such file or directory\n")
    config = tmp_path / "bad.yaml"
    config.write_text("base_model: embedded:smollm2\nlora_rank: 8\n", encoding="utf-8")
    assert train.main(["run", "--config", str(config)]) == EXIT_USAGE
    assert "unknown field(s) ['lora_rank']" in capsys.readouterr().err


def test_an_output_that_cannot_be_written_stops_with_4(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    assert kg.main([str(TRIPLES), "--out", str(blocker / "kg.ttl"), "--no-view"]) == EXIT_STOPPED
    err = capsys.readouterr().err
    assert err.startswith("ptoie-kg: error: stopped writing the outputs: ") and err.count("\n") == 1
    assert main.main(["view", str(TRIPLES), "--out", str(blocker / "kg.html")]) == EXIT_STOPPED
    err = capsys.readouterr().err
    assert err.startswith("ptoie view: error: cannot write ") and err.count("\n") == 1


def test_commands_that_build_no_graph_start_without_the_graph_stage():
    """ptoie-train and ptoie-eval import neither DuckDB nor pyoxigraph (the graph stage's)."""
    import subprocess
    import sys
    code = ("import sys, ptoie.cli.train, ptoie.cli.evaluate; "
            "print(sorted(m for m in ('duckdb', 'pyoxigraph') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

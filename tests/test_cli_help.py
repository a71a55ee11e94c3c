"""Every command's and subcommand's --help: a plain-text description, examples that the parser
accepts, and the exit-status table of ptoie.exit_codes; the same flag means the same thing in
every command."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ptoie.cli import batch, evaluate, kg, main, train
from ptoie.exit_codes import EXIT_MEANINGS, EXIT_OK, EXIT_USAGE

REPO = Path(__file__).resolve().parents[1]
COMMANDS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "ptoie": main.build_parser, "ptoie-batch": batch.build_parser, "ptoie-kg": kg.build_parser,
    "ptoie-eval": evaluate.build_parser, "ptoie-train": train.build_parser,
}
RST = re.compile(r"`|:(?:mod|func|class|meth|data|attr|exc|obj):|::\s*$|^\.\. ", re.M)


def walk(parser: argparse.ArgumentParser, prog: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``parser`` and every subcommand's parser below it, with their command lines."""
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, f"{prog} {name}")


PARSERS = [(prog, parser) for root, build in COMMANDS.items() for prog, parser in walk(build(), root)]
IDS = [prog for prog, _ in PARSERS]


def section(text: str, title: str) -> list[str]:
    """The indented lines under ``title:`` in a help text, as they are printed."""
    lines = text.splitlines()
    start = lines.index(f"{title}:") + 1
    body = []
    for line in lines[start:]:
        if not line.startswith(" "):
            break
        body.append(line)
    return body


def test_every_command_and_subcommand_is_covered():
    assert set(IDS) == {"ptoie", "ptoie extract", "ptoie sparql", "ptoie sql", "ptoie view",
                        "ptoie-batch", "ptoie-kg", "ptoie-eval", "ptoie-train",
                        "ptoie-train prepare", "ptoie-train run", "ptoie-train export"}


@pytest.mark.parametrize("prog, parser", PARSERS, ids=IDS)
def test_help_has_a_plain_text_description(prog, parser):
    text = parser.format_help()
    assert parser.description and len(parser.description.split()) >= 8, prog
    first_words = " ".join(parser.description.split()[:4])
    assert first_words in " ".join(text.split()), prog
    assert not RST.search(text), f"{prog} --help shows reST markup: {RST.search(text)[0]!r}"


@pytest.mark.parametrize("prog, parser", PARSERS, ids=IDS)
def test_help_examples_are_accepted_by_the_parser(prog, parser):
    examples = section(parser.format_help(), "examples")
    assert examples, prog
    root, *subcommand = prog.split()
    for line in examples:
        command = shlex.split(line.split("|")[-1])  # `echo ... | ptoie extract --file -`
        assert command[: 1 + len(subcommand)] == [root, *subcommand], line
        try:
            COMMANDS[root]().parse_args(command[1:])
        except SystemExit as exc:
            pytest.fail(f"{line!r}: the parser refused it (exit {exc.code})")


@pytest.mark.parametrize("prog, parser", PARSERS, ids=IDS)
def test_help_prints_the_exit_status_table(prog, parser):
    table = section(parser.format_help(), "exit status")
    rows: dict[int, str] = {}
    code = None
    for line in table:
        match = re.match(r"  (\d)  (.*)", line)
        if match:
            code = int(match[1])
            rows[code] = match[2]
        elif line.startswith("     ") and code is not None:
            rows[code] += " " + line.strip()
    assert {EXIT_OK, EXIT_USAGE} <= set(rows), prog
    for code, meaning in rows.items():
        assert meaning == " ".join(EXIT_MEANINGS[code].split()), (prog, code)
    assert "traceback" in table[-1]


def flags(option: str) -> dict[str, argparse.Action]:
    """``option``'s action in every parser that has it, by command."""
    found = {}
    for prog, parser in PARSERS:
        for action in parser._actions:
            if option in action.option_strings:
                found[prog] = action
    return found


@pytest.mark.parametrize("option, commands", [
    ("--threads", {"ptoie extract", "ptoie-eval"}),
    ("--n-gpu-layers", {"ptoie extract", "ptoie-eval"}),
    ("--format", {"ptoie extract", "ptoie sparql", "ptoie sql"}),
    ("--min-confidence", {"ptoie view", "ptoie-batch", "ptoie-kg"}),
    ("--max-graph-triples", {"ptoie-batch", "ptoie-kg"}),
])
def test_a_flag_is_the_same_in_every_command(option, commands):
    actions = flags(option)
    assert set(actions) == commands
    shapes = {(a.dest, a.metavar, tuple(a.choices or ()), a.default) for a in actions.values()}
    assert len(shapes) == 1, shapes


def test_the_format_choices_and_thread_metavar():
    assert flags("--format")["ptoie sql"].choices == ("table", "jsonl", "csv", "json")
    extract = next(p for prog, p in PARSERS if prog == "ptoie extract")
    assert "--threads N " in extract.format_help()


@pytest.mark.slow
@pytest.mark.parametrize("module", ["main", "batch", "kg", "evaluate", "train"])
def test_help_runs_as_a_program(module):
    result = subprocess.run([sys.executable, "-m", f"ptoie.cli.{module}", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "examples:" in result.stdout and "exit status:" in result.stdout

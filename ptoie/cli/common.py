"""What every command shares: the help layout (a plain-text description, examples, the exit-status
table of :mod:`ptoie.exit_codes`) and the one-line error. It imports no stage of the pipeline, so
a command starts without the stages it does not use."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from ptoie.exit_codes import EXIT_GATE_FAILED, EXIT_MEANINGS, EXIT_USAGE

_TABLE_WIDTH = 80


class HelpFormatter(argparse.HelpFormatter):
    """Description and epilog: unindented lines are prose, wrapped to the terminal; indented
    lines (examples, the exit-status table) are printed as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in textwrap.dedent(text).strip().split("\n\n"):
            lines: list[str] = []
            prose: list[str] = []
            for line in [*block.splitlines(), " "]:  # the sentinel flushes the last prose
                if line[:1].isspace():
                    if prose:
                        lines.append(textwrap.fill(" ".join(prose), width, break_on_hyphens=False,
                                                   initial_indent=indent, subsequent_indent=indent))
                        prose = []
                    if line.strip():
                        lines.append(indent + line)
                else:
                    prose.append(line)
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)


def epilog(examples: Sequence[str], codes: Sequence[int]) -> str:
    """The end of a command's help: ``examples`` (command lines, each runnable from the
    repository root) and the exit statuses ``codes`` the command returns, with their meaning."""
    example_lines = "\n".join(f"  {line}" for line in examples)
    table = []
    for code in codes:
        table.append(textwrap.fill(EXIT_MEANINGS[code], _TABLE_WIDTH, initial_indent=f"  {code}  ",
                                   subsequent_indent="     ", break_on_hyphens=False))
    crash = EXIT_USAGE if EXIT_GATE_FAILED in codes else EXIT_GATE_FAILED
    table.append(f"  any other error prints a Python traceback and exits {crash}")
    return f"examples:\n{example_lines}\n\nexit status:\n" + "\n".join(table)


def new_parser(prog: str, description: str, *, examples: Sequence[str],
               codes: Sequence[int]) -> argparse.ArgumentParser:
    """A command's parser with the shared help layout."""
    return argparse.ArgumentParser(prog=prog, description=description,
                                   epilog=epilog(examples, codes), formatter_class=HelpFormatter)


def add_subcommand(subparsers: argparse._SubParsersAction, name: str, *, summary: str,
                   description: str, examples: Sequence[str],
                   codes: Sequence[int]) -> argparse.ArgumentParser:
    """A subcommand's parser (``ptoie extract``) with the shared help layout; ``summary`` is its
    line in the parent's help."""
    return subparsers.add_parser(name, help=summary, description=description,
                                 epilog=epilog(examples, codes), formatter_class=HelpFormatter)


def fail(prog: str, message: str, code: int = EXIT_USAGE) -> int:
    """Print ``PROG: error: MESSAGE`` (one line) on stderr; returns ``code``."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code

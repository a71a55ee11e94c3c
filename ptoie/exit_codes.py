"""The exit status of every ptoie command: one table, printed at the end of each command's help
(:func:`ptoie.cli.common.epilog`) and returned by the commands and the batch job."""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
EXIT_GATE_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_SKIPPED: Final = 3
EXIT_STOPPED: Final = 4

EXIT_MEANINGS: Final[dict[int, str]] = {
    EXIT_OK: "ok",
    EXIT_GATE_FAILED: "gate failed: F1 below --min-f1 (ptoie-eval only)",
    EXIT_USAGE: "usage error or bad input, nothing written",
    EXIT_SKIPPED: "done, but some input skipped (each skip is reported on stderr)",
    EXIT_STOPPED: "stopped: the output could not be written (disk full or another I/O error; "
                  "ptoie-batch also when every worker is lost); finished work is kept: rerun the "
                  "same command once fixed",
}
"""What each status means, in plain text: the table every command's help prints."""

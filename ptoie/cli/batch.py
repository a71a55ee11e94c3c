"""``ptoie-batch``: a text collection -> the knowledge graph on Ray workers, a thin layer over
:func:`ptoie.batch.run_batch` (see docs/batch.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ptoie.batch import BatchConfig, BatchStoppedError, BatchUsageError, run_batch
from ptoie.cli.common import fail, new_parser
from ptoie.cli.graph_options import add_graph_output_arguments
from ptoie.cli.options import add_extractor_arguments, extractor_configs, other_options
from ptoie.extract.config import ConfigError
from ptoie.exit_codes import EXIT_OK, EXIT_SKIPPED, EXIT_STOPPED, EXIT_USAGE

PROG = "ptoie-batch"
DESCRIPTION = """\
Turn a text collection into a knowledge graph on Ray workers: next to the RDF file --out NAME.ttl
it writes NAME.parquet/ (the triples), NAME.oxigraph/ (for ptoie sparql), NAME.graphml, NAME.json
and NAME.html (a picture of the graph).

Inputs are files and folders (read recursively) of .txt (a document per file), .jsonl (a document
per line), .parquet (a document per row) and .html/.htm (a web page per file), each optionally
gzip-compressed, and .warc/.warc.gz (an HTML response per document). Rerunning the same command
resumes: finished documents are skipped.

It refuses to start, writing nothing, on bad flags, an input that does not exist or holds no
document to extract, a model that is not found, settings that differ from the run being resumed,
or another job running on the same output. Once started, each skipped input is a line on stderr
and a record in the errors file (bad input, another language, a document that kept crashing its
worker). See docs/batch.md."""

EXAMPLES = (
    "ptoie-batch examples/corpus --out out/kg.ttl --dry-run",
    "ptoie-batch examples/corpus --out out/kg.ttl",
    "ptoie-batch examples/corpus --out out/kg.ttl --workers 2 --min-confidence 0.5",
)


def _languages(value: str) -> tuple[str, ...] | None:
    if value.strip().lower() == "any":
        return None
    codes = tuple(c.strip().lower() for c in value.split(",") if c.strip())
    if not codes or not all(c.isalpha() and 2 <= len(c) <= 3 for c in codes):
        raise argparse.ArgumentTypeError("comma-separated language codes (pt,es) or any")
    return codes


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input")
    group.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                       help="files or directories: .txt, .jsonl, .parquet, .html (optionally .gz), "
                            ".warc, .warc.gz")
    group.add_argument("--text-field", default="text", metavar="NAME",
                       help="JSONL key / Parquet column with the text (default: text)")
    group.add_argument("--id-field", default="id", metavar="NAME",
                       help="JSONL key / Parquet column with the document id; where missing the id "
                            "is path:line (default: id)")
    group.add_argument("--limit", type=int, metavar="N", help="process only the first N documents")
    group.add_argument("--languages", type=_languages, default=("pt",), metavar="CODES",
                       help="comma-separated ISO 639-1 codes of the languages to extract; documents "
                            "found to be in another are skipped and recorded (py3langid), or any "
                            "(default: pt)")
    group.add_argument("--max-sentence-chars", type=int, default=600, metavar="N",
                       help="longer sentences are cut at ; : , or skipped (default: 600)")
    group.add_argument("--long-sentences", choices=["split", "skip"], default="split",
                       help="what to do with a sentence over --max-sentence-chars (default: split)")
    group.add_argument("--max-line-bytes", type=int, default=500_000, metavar="N",
                       help="a longer line skips its document (default: 500000)")
    group.add_argument("--max-document-bytes", type=int, default=20_000_000, metavar="N",
                       help="larger .txt documents are skipped (default: 20000000)")


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("--out", type=Path, required=True, metavar="FILE",
                       help="RDF file, .ttl (Turtle) or .nt (N-Triples); the other outputs go next "
                            "to it by default")
    group.add_argument("--parquet", type=Path, dest="parquet_dir", metavar="DIR",
                       help="Parquet dataset folder (default: <out stem>.parquet/)")
    add_graph_output_arguments(group)
    group.add_argument("--errors", type=Path, metavar="FILE",
                       help="errors JSONL of this run (default: <out stem>.errors.jsonl)")
    group.add_argument("--overwrite", action="store_true",
                       help="start over instead of resuming the run in the Parquet folder")


def _workers(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a number or auto") from None


def _add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Ray")
    group.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a "
                                         "local Ray)")
    group.add_argument("--workers", type=_workers, default="auto", metavar="N",
                       help="extractor actors, or auto: one per --threads-per-worker CPUs (per "
                            "--gpus-per-worker GPUs) that Ray reports, at most one per GiB of its "
                            "memory (default: auto)")
    group.add_argument("--threads-per-worker", type=int, default=1, metavar="N",
                       help="CPU threads (Ray num_cpus) per actor (default: 1; scale with "
                            "--workers first)")
    group.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G",
                       help="GPUs per actor, e.g. 0.25; > 0 offloads all layers (default: 0)")
    group.add_argument("--batch-sentences", type=int, default=32, metavar="N",
                       help="sentences per batch and shard (default: 32)")
    group.add_argument("--object-store-mb", type=int, default=128, metavar="MB",
                       help="object store of a local Ray, MB (default: 128)")


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(PROG, DESCRIPTION, examples=EXAMPLES,
                        codes=(EXIT_OK, EXIT_USAGE, EXIT_SKIPPED, EXIT_STOPPED))
    _add_input_arguments(parser)
    _add_output_arguments(parser)
    _add_ray_arguments(parser)
    add_extractor_arguments(parser, runtime=False)
    run = parser.add_argument_group("run")
    run.add_argument("--dry-run", action="store_true",
                     help="count documents and sentences only (no model, no Ray)")
    run.add_argument("--progress", choices=["auto", "always", "never"], default="auto",
                     help="progress bar on stderr (default: auto = when a terminal)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = BatchConfig(**other_options(args) | extractor_configs(args) | {"inputs": tuple(args.inputs)})
        summary = run_batch(config)
    except (BatchUsageError, ConfigError) as exc:
        return fail(PROG, str(exc))
    except BatchStoppedError as exc:
        return fail(PROG, str(exc), EXIT_STOPPED)
    print(summary.render())
    return summary.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``ptoie-eval``: score a model (or a predictions file) on a gold benchmark; the pre-deploy gate.
A thin layer over :mod:`ptoie.evaluation`; the scorer is documented in docs/evaluation.md."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import traceback
from pathlib import Path

from ptoie.cli.common import fail, new_parser
from ptoie.cli.options import add_extractor_arguments, extractor_configs
from ptoie.evaluation import (BUNDLED_BENCHMARKS, MATCHERS, NORMALIZATIONS, BenchmarkFormatError,
                              GateConfig, evaluate, format_per_sentence, load_benchmark,
                              predictions_from_file, run_extractor)
from ptoie.exit_codes import EXIT_GATE_FAILED, EXIT_OK, EXIT_USAGE
from ptoie.extract.extractor import Extractor, ModelLoadError

PROG = "ptoie-eval"
DESCRIPTION = """\
Score a model, or a predictions file, on a gold benchmark: the pre-deploy gate. Writes
report.json, predictions.tsv and pr_curve.png to --out, prints the predictions per sentence
beside the gold's, then one summary line (always the last line). With --min-f1 it is a gate: it
exits 1 when F1 is below it. The model and decoding flags are the same as in ptoie extract and
ptoie-batch. The scorer is documented in docs/evaluation.md."""

EXAMPLES = (
    "ptoie-eval --min-f1 0.30 --out out/eval/default",
    "ptoie-eval --predictions out/eval/default/predictions.tsv --matcher exact --out out/eval/exact",
    "ptoie-eval --model embedded:smollm2 --lora models/ptoie-smollm2-135m-lora-f16.gguf --greedy",
)


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(PROG, DESCRIPTION, examples=EXAMPLES,
                        codes=(EXIT_OK, EXIT_GATE_FAILED, EXIT_USAGE))
    add_extractor_arguments(parser)
    parser.add_argument("--predictions", type=Path, metavar="FILE",
                        help="score this predictions.tsv instead of running a model")

    bench = parser.add_argument_group("benchmark and gate")
    bench.add_argument("--bench", default="pud100",
                       help=f"bundled benchmark ({', '.join(BUNDLED_BENCHMARKS)}) or the path of a gold "
                       "TSV in the same format (default: pud100)")
    bench.add_argument("--min-f1", type=float, metavar="F1",
                       help="gate: exit 1 when F1 is below this (0..1)")
    bench.add_argument("--matcher", choices=MATCHERS, default="lexical",
                       help="matcher of the gate's F1 (default: lexical, Stanovsky et al. 2018)")
    bench.add_argument("--normalization", choices=NORMALIZATIONS, default="pt",
                       help="pt: case-folded, contractions split (default); raw: 2018 whitespace tokens")
    bench.add_argument("--out", type=Path, metavar="DIR",
                       help="report directory (default: out/eval/<bench>-<UTC time>)")

    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _usage_error(args: argparse.Namespace) -> str | None:
    if args.predictions is not None and (args.model_path or args.lora_path):
        return "--predictions scores an existing file: it cannot be combined with --model/--lora"
    if args.min_f1 is not None and not 0.0 <= args.min_f1 <= 1.0:
        return f"--min-f1 must be between 0 and 1, got {args.min_f1}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors exit 2 with argparse's message
    problem = _usage_error(args)
    if problem:
        parser.print_usage(sys.stderr)
        return fail(PROG, problem)
    try:
        return _run(args)
    except Exception as exc:  # exit 1 must only ever mean "below the gate"
        traceback.print_exc()
        print(f"{PROG}: error: unexpected {type(exc).__name__}: {exc} (traceback above)",
              file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    gate = GateConfig(matcher=args.matcher, normalization=args.normalization, min_f1=args.min_f1)
    try:
        benchmark = load_benchmark(args.bench)
        if args.predictions is not None:
            run = predictions_from_file(args.predictions, benchmark)
        else:
            start = time.perf_counter()
            try:
                extractor = Extractor(**extractor_configs(args))
            except (ModelLoadError, ValueError) as exc:
                return fail(PROG, f"model: {exc}")
            load_seconds = time.perf_counter() - start
            with extractor:
                run = run_extractor(extractor, benchmark, load_seconds=load_seconds,
                                    progress=not args.quiet)
    except (BenchmarkFormatError, FileNotFoundError, IsADirectoryError) as exc:
        return fail(PROG, str(exc))

    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out_dir = args.out or Path("out") / "eval" / f"{benchmark.name}-{stamp}"
    outcome = evaluate(benchmark, run, gate=gate, out_dir=out_dir)

    print(f"{PROG}: {format_per_sentence(outcome.report['per_sentence'])}")
    s = outcome.gate
    numbers = (f"{gate.key} P={s.precision:.4f} R={s.recall:.4f} F1={s.f1:.4f} AUC={s.auc:.4f} "
               f"on {benchmark.name} ({len(benchmark.sentences)} sentences, {s.n_predictions} "
               f"predictions); report: {outcome.out_dir}")
    if gate.min_f1 is None:
        print(f"{PROG}: no gate (--min-f1 not given): {numbers}")
        return EXIT_OK
    if outcome.passed:
        print(f"{PROG}: PASS: F1 {s.f1:.4f} >= --min-f1 {gate.min_f1}: {numbers}")
        return EXIT_OK
    print(f"{PROG}: FAIL: F1 {s.f1:.4f} is below the gate --min-f1 {gate.min_f1}: {numbers}")
    return EXIT_GATE_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

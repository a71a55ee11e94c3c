"""``ptoie-train``: ``prepare`` (CoNLL -> JSONL), ``run`` (train from a YAML config), ``export``
(GGUF); a thin layer over :mod:`ptoie.training`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ptoie.cli.common import add_subcommand, fail, new_parser
from ptoie.evaluation.benchmark import write_gold_tsv
from ptoie.exit_codes import EXIT_OK, EXIT_SKIPPED, EXIT_USAGE
from ptoie.training.config import ConfigError, TrainConfig
from ptoie.training.prepare import prepare, split_path, write_jsonl

PROG = "ptoie-train"
DESCRIPTION = """\
Train the extractor: prepare the training data from span-tagged CoNLL files, train a LoRA
adapter or a full fine-tune from a YAML config, and export the result to GGUF for llama.cpp.
Training needs the training extras (torch, transformers, peft); see docs/training.md."""

PREPARE = """\
Turn span-tagged CoNLL files (TransAlign) into ChatML training records (JSONL), hold out a
validation split (NAME.val.jsonl) and write the gold TSV of each validation file, which
ptoie-eval --bench reads. Blocks that cannot be read are reported on stderr and skipped.
Prints a JSON summary."""

RUN = """\
Train a LoRA adapter or a full fine-tune from a YAML config (the fields of
ptoie.training.config.TrainConfig; see training/configs/). Prints a JSON summary; the run's
folder holds the report and the final model or adapter."""

EXPORT = """\
Export a run's final/ folder to GGUF. A LoRA run gives its llama.cpp adapter by default (use it
with --lora on the base GGUF); a full fine-tune gives the merged model as F16 and Q8_0. Prints
the files written, as JSON."""

_PREPARE_EXAMPLES = (
    "ptoie-train prepare ../shared/data/transalign/*.conll --out runs/data/transalign.jsonl",
    "ptoie-train prepare ../shared/data/transalign/*.conll --out runs/data/ta-neg.jsonl "
    "--negatives 0.05",
)
_RUN_EXAMPLES = ("ptoie-train run --config training/configs/smollm2-135m-lora-cpu.yaml",)
_EXPORT_EXAMPLES = (
    "ptoie-train export --run runs/smollm2-135m-lora-cpu/final --base embedded:smollm2 "
    "--out out/gguf/",
)


def _prepare(args: argparse.Namespace) -> int:
    try:
        data = prepare(args.sources, validation_fraction=args.validation_fraction, seed=args.seed,
                       negatives=args.negatives, compounds=args.compounds)
    except OSError as exc:
        return fail("ptoie-train prepare", f"{exc.filename}: {exc.strerror}")
    except ValueError as exc:
        return fail("ptoie-train prepare", str(exc))
    for bad in data.bad_blocks:
        print(f"bad block: {bad}", file=sys.stderr)
    if not data.train:
        return fail("ptoie-train prepare",
                    f"no training sentence in {', '.join(map(str, args.sources))} "
                    f"({data.n_blocks} blocks, {len(data.bad_blocks)} bad): nothing written")

    def write_split(records: list[dict], split: str) -> tuple[Path, Path]:
        """The split's JSONL and its gold TSV (what ``ptoie-eval --bench`` reads)."""
        path = split_path(args.out, split)
        write_jsonl(records, path)
        gold = path.with_suffix(".gold.tsv")
        write_gold_tsv(((r["sentence"], r["triples"]) for r in records), gold)
        return path, gold

    write_jsonl(data.train, args.out)
    validation, gold = write_split(data.validation, "val")
    negatives, negatives_gold = write_split(data.validation_negatives, "val.neg")
    _, compounds_gold = write_split(data.validation_compounds, "val.cmp")
    print(json.dumps({**data.summary(), "train_file": str(args.out),
                      "validation_file": str(validation),
                      "validation_gold": str(gold), "validation_negatives_file": str(negatives),
                      "validation_negatives_gold": str(negatives_gold),
                      "validation_compounds_gold": str(compounds_gold)}, indent=2))
    return EXIT_SKIPPED if data.bad_blocks else EXIT_OK


def _run(args: argparse.Namespace) -> int:
    try:
        config = TrainConfig.from_yaml(args.config)
    except ConfigError as exc:
        return fail("ptoie-train run", str(exc))
    except OSError as exc:
        return fail("ptoie-train run", f"{args.config}: {exc.strerror or exc}")
    from ptoie.training.train import train  # torch: the optional training extras
    report = train(config)
    summary = {k: report[k] for k in ("global_steps", "train_loss", "validation_loss", "wall_time_s",
                                      "samples_per_s", "trainable_parameters", "final_dir")}
    print(json.dumps(summary, indent=2))
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from ptoie.training.export import ExportError, export_run  # torch: the optional training extras
    merged = None if args.merged is None else [t for t in args.merged.split(",") if t]
    try:
        written = export_run(args.run, out_dir=args.out, base_model=args.base, adapter=args.adapter,
                             adapter_dtype=args.adapter_dtype, merged=merged,
                             tokenizer_pre=args.tokenizer_pre, name=args.name)
    except ExportError as exc:
        return fail("ptoie-train export", str(exc))
    print(json.dumps([f.to_dict() for f in written], indent=2))
    return EXIT_OK


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = add_subcommand(sub, "prepare", summary="TransAlign CoNLL -> ChatML JSONL (+ NAME.val.jsonl split)",
                       description=PREPARE, examples=_PREPARE_EXAMPLES,
                       codes=(EXIT_OK, EXIT_USAGE, EXIT_SKIPPED))
    p.add_argument("sources", nargs="+", type=Path, metavar="CONLL", help="span-tagged CoNLL files")
    p.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="training JSONL; validation goes to NAME.val.jsonl")
    p.add_argument("--validation-fraction", type=float, default=0.01, metavar="FRACTION",
                   help="sentences held out for validation (default: %(default)s)")
    p.add_argument("--seed", type=int, default=13, help="seed of the split (default: %(default)s)")
    p.add_argument("--negatives", type=float, default=0.0, metavar="FRACTION",
                   help="add 'nenhuma' records made from verbless argument spans, as a fraction of "
                        "the training sentences (default 0: none); validation negatives are always "
                        "written to NAME.val.neg.jsonl / .val.neg.gold.tsv")
    p.add_argument("--compounds", type=float, default=0.0, metavar="FRACTION",
                   help="add two-sentence records (two training sentences joined, answer = the "
                        "triples of both), as a fraction of the training sentences (default 0); "
                        "validation compounds are always written to NAME.val.cmp.jsonl / .val.cmp.gold.tsv")
    p.set_defaults(func=_prepare)


def _add_run(sub: argparse._SubParsersAction) -> None:
    r = add_subcommand(sub, "run", summary="train (LoRA or FFT) from a YAML config",
                       description=RUN, examples=_RUN_EXAMPLES, codes=(EXIT_OK, EXIT_USAGE))
    r.add_argument("--config", type=Path, required=True, metavar="FILE", help="the YAML config")
    r.set_defaults(func=_run)


def _add_export(sub: argparse._SubParsersAction) -> None:
    e = add_subcommand(sub, "export", summary="run -> GGUF: LoRA adapter and/or merged F16/Q8_0",
                       description=EXPORT, examples=_EXPORT_EXAMPLES, codes=(EXIT_OK, EXIT_USAGE))
    e.add_argument("--run", type=Path, required=True, metavar="DIR",
                   help="the run's final/ folder (adapter or model)")
    e.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the .gguf files")
    e.add_argument("--base", default=None,
                   help="base the run was trained on (embedded:smollm2 | HF id | folder | .gguf); "
                        "default: config.base_model of the run's report.json")
    e.add_argument("--merged", default=None, metavar="f16,q8_0",
                   help="merged model file types to write (LoRA runs are merged into the base first); "
                        "default: none for a LoRA run, f16,q8_0 for an FFT run")
    e.add_argument("--adapter", action=argparse.BooleanOptionalAction, default=None,
                   help="write the llama.cpp LoRA-adapter GGUF (default: yes for a LoRA run)")
    e.add_argument("--adapter-dtype", choices=["f16", "f32"], default="f16",
                   help="tensor type of the adapter GGUF (default: %(default)s)")
    e.add_argument("--tokenizer-pre", default=None, metavar="NAME",
                   help="llama.cpp pre-tokenizer name when it cannot be detected (gpt2, smollm, qwen2, ...)")
    e.add_argument("--name", default=None, help="file name stem (default: the run folder's name)")
    e.set_defaults(func=_export)


def build_parser() -> argparse.ArgumentParser:
    examples = (_PREPARE_EXAMPLES[0], _RUN_EXAMPLES[0], _EXPORT_EXAMPLES[0])
    parser = new_parser(PROG, DESCRIPTION, examples=examples,
                        codes=(EXIT_OK, EXIT_USAGE, EXIT_SKIPPED))
    sub = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")
    _add_prepare(sub)
    _add_run(sub)
    _add_export(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())

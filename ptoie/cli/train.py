"""``ptoie-train``: ``prepare`` (CoNLL -> JSONL), ``run`` (train from a YAML config), ``export`` (GGUF)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _prepare(args: argparse.Namespace) -> int:
    from ptoie.evaluation.benchmark import write_gold_tsv
    from ptoie.training.prepare import prepare, split_path, write_jsonl
    try:
        data = prepare(args.sources, validation_fraction=args.validation_fraction, seed=args.seed,
                       negatives=args.negatives, compounds=args.compounds)
    except OSError as exc:
        print(f"ptoie-train prepare: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"ptoie-train prepare: error: {exc}", file=sys.stderr)
        return 2
    for bad in data.bad_blocks:
        print(f"bad block: {bad}", file=sys.stderr)
    if not data.train:
        print(f"ptoie-train prepare: error: no training sentence in {', '.join(map(str, args.sources))} "
              f"({data.n_blocks} blocks, {len(data.bad_blocks)} bad): nothing written", file=sys.stderr)
        return 2

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
    return 0


def _run(args: argparse.Namespace) -> int:
    from ptoie.training.config import TrainConfig
    from ptoie.training.train import train
    report = train(TrainConfig.from_yaml(args.config))
    summary = {k: report[k] for k in ("global_steps", "train_loss", "validation_loss", "wall_time_s",
                                      "samples_per_s", "trainable_parameters", "final_dir")}
    print(json.dumps(summary, indent=2))
    return 0


def _export(args: argparse.Namespace) -> int:
    from ptoie.training.export import export_run
    merged = None if args.merged is None else [t for t in args.merged.split(",") if t]
    written = export_run(args.run, out_dir=args.out, base_model=args.base, adapter=args.adapter,
                         adapter_dtype=args.adapter_dtype, merged=merged,
                         tokenizer_pre=args.tokenizer_pre, name=args.name)
    print(json.dumps([f.to_dict() for f in written], indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ptoie-train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="TransAlign CoNLL -> ChatML JSONL (+ .val.jsonl split)")
    p.add_argument("sources", nargs="+", type=Path, help="span-tagged CoNLL files")
    p.add_argument("--out", type=Path, required=True, help="training JSONL; validation goes to NAME.val.jsonl")
    p.add_argument("--validation-fraction", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--negatives", type=float, default=0.0, metavar="FRACTION",
                   help="add 'nenhuma' records made from verbless argument spans, as a fraction of "
                        "the training sentences (default 0: none); validation negatives are always "
                        "written to NAME.val.neg.jsonl / .val.neg.gold.tsv")
    p.add_argument("--compounds", type=float, default=0.0, metavar="FRACTION",
                   help="add two-sentence records (two training sentences joined, answer = the "
                        "triples of both), as a fraction of the training sentences (default 0); "
                        "validation compounds are always written to NAME.val.cmp.jsonl / .val.cmp.gold.tsv")
    p.set_defaults(func=_prepare)
    r = sub.add_parser("run", help="train (LoRA or FFT) from a YAML config")
    r.add_argument("--config", type=Path, required=True)
    r.set_defaults(func=_run)
    e = sub.add_parser("export", help="run -> GGUF: LoRA adapter (default for LoRA runs) and/or merged F16/Q8_0",
                       description="Export runs/X/final to GGUF. A LoRA run gives its llama.cpp adapter by "
                       "default (use it with the extractor's lora_path on the base GGUF); an FFT run gives "
                       "the merged model as F16 and Q8_0.")
    e.add_argument("--run", type=Path, required=True, help="the run's final/ folder (adapter or model)")
    e.add_argument("--out", type=Path, required=True, help="folder for the .gguf files")
    e.add_argument("--base", default=None,
                   help="base the run was trained on (embedded:smollm2 | HF id | folder | .gguf); "
                        "default: config.base_model of the run's report.json")
    e.add_argument("--merged", default=None, metavar="f16,q8_0",
                   help="merged model file types to write (LoRA runs are merged into the base first); "
                        "default: none for a LoRA run, f16,q8_0 for an FFT run")
    e.add_argument("--adapter", action=argparse.BooleanOptionalAction, default=None,
                   help="write the llama.cpp LoRA-adapter GGUF (default: yes for a LoRA run)")
    e.add_argument("--adapter-dtype", choices=["f16", "f32"], default="f16")
    e.add_argument("--tokenizer-pre", default=None,
                   help="llama.cpp pre-tokenizer name when it cannot be detected (gpt2, smollm, qwen2, ...)")
    e.add_argument("--name", default=None, help="file name stem (default: the run folder's name)")
    e.set_defaults(func=_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())

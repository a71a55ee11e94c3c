"""``ptoie-train``: ``prepare`` (CoNLL -> JSONL), ``run`` (train from a YAML config), ``export`` (GGUF)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _prepare(args: argparse.Namespace) -> int:
    from training.prepare import prepare, validation_path, write_jsonl
    data = prepare(args.sources, validation_fraction=args.validation_fraction, seed=args.seed)
    write_jsonl(data.train, args.out)
    write_jsonl(data.validation, validation_path(args.out))
    for bad in data.bad_blocks:
        print(f"bad block: {bad}", file=sys.stderr)
    print(json.dumps({**data.summary(), "train_file": str(args.out),
                      "validation_file": str(validation_path(args.out))}, indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    from training.config import TrainConfig
    from training.train import train
    report = train(TrainConfig.from_yaml(args.config))
    summary = {k: report[k] for k in ("global_steps", "train_loss", "validation_loss", "wall_time_s",
                                      "samples_per_s", "trainable_parameters", "final_dir")}
    print(json.dumps(summary, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ptoie-train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="TransAlign CoNLL -> ChatML JSONL (+ .val.jsonl split)")
    p.add_argument("sources", nargs="+", type=Path, help="span-tagged CoNLL files")
    p.add_argument("--out", type=Path, required=True, help="training JSONL; validation goes to NAME.val.jsonl")
    p.add_argument("--validation-fraction", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=13)
    p.set_defaults(func=_prepare)
    r = sub.add_parser("run", help="train (LoRA or FFT) from a YAML config")
    r.add_argument("--config", type=Path, required=True)
    r.set_defaults(func=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())

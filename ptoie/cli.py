"""``ptoie`` command line: ``ptoie extract "frase"`` / ``ptoie extract --file frases.txt``."""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from .extractor import Extractor, ModelLoadError, SentenceResult
from .merge import MERGED_QUANTS

_EXTRACTOR_DEFAULTS = {name: p.default for name, p in inspect.signature(Extractor).parameters.items()}
EXTRACTOR_OPTIONS = ("lora_merge", "n_ctx", "n_parallel", "temperature", "top_p", "min_p", "top_k",
                     "max_tokens", "seed", "grammar")
"""Extractor keyword arguments that :func:`add_extractor_arguments` puts on a command line."""


def _lora_merge(value: str) -> str | None:
    if value == "none":
        return None
    if value not in MERGED_QUANTS:
        raise argparse.ArgumentTypeError(f"choose from {', '.join((*MERGED_QUANTS, 'none'))}")
    return value


def add_extractor_arguments(parser: argparse.ArgumentParser) -> None:
    """Model and decoding flags of every ptoie command (``extract``, ``ptoie-eval``, ``ptoie-batch``).

    Defaults are :class:`~ptoie.Extractor`'s own (a command may override one with
    ``parser.set_defaults``); ``--greedy`` is ``--temperature 0``. Hardware flags differ per
    command (threads vs workers) and stay with each command.
    """
    d = _EXTRACTOR_DEFAULTS
    model = parser.add_argument_group("model")
    model.add_argument("--model", help="GGUF model path or embedded:smollm2 (the bare base); "
                                       "omitted: the shipped default model (models/default.json)")
    model.add_argument("--lora", help="llama.cpp LoRA-adapter GGUF applied on --model")
    model.add_argument("--lora-merge", type=_lora_merge, default=d["lora_merge"],
                       metavar="{" + ",".join((*MERGED_QUANTS, "none")) + "}",
                       help="merge the adapter into the base at first use, cached, in this format; "
                            "none: apply it at run time (default: %(default)s)")
    model.add_argument("--n-ctx", type=int, default=d["n_ctx"],
                       help="context tokens per sentence: prompt + sentence + answer (default: %(default)s)")
    model.add_argument("--n-parallel", type=int, default=d["n_parallel"],
                       help="sentences decoded together (default: %(default)s)")
    sampling = parser.add_argument_group("sampling")
    temperature = sampling.add_mutually_exclusive_group()
    temperature.add_argument("--temperature", type=float, default=d["temperature"],
                             help="0 = greedy (default: %(default)s)")
    temperature.add_argument("--greedy", action="store_const", const=0.0, dest="temperature",
                             help="greedy decoding: --temperature 0")
    sampling.add_argument("--top-p", type=float, default=d["top_p"], help="(default: %(default)s)")
    sampling.add_argument("--min-p", type=float, default=d["min_p"], help="(default: %(default)s)")
    sampling.add_argument("--top-k", type=int, default=d["top_k"], help="(default: %(default)s)")
    sampling.add_argument("--max-tokens", type=int, default=d["max_tokens"],
                          help="generated tokens per sentence, at most (default: %(default)s)")
    sampling.add_argument("--seed", type=int, default=d["seed"], help="(default: %(default)s)")
    sampling.add_argument("--grammar", action=argparse.BooleanOptionalAction, default=d["grammar"],
                          help="constrain output to the answer format (default: on)")


def extractor_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~ptoie.Extractor` keyword arguments of :func:`add_extractor_arguments`' flags."""
    return {"model_path": args.model, "lora_path": args.lora,
            **{name: getattr(args, name) for name in EXTRACTOR_OPTIONS}}


def _read_sentences(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SystemExit(f"ptoie: error: sentence file not found: {path}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise SystemExit(f"ptoie: error: {path}:{line}: not UTF-8 text ({exc.reason})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _print_table(results: list[SentenceResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for result in results:
        table = Table(title=result.sentence, title_justify="left", show_lines=False)
        for column in ("arg1", "rel", "arg2", "confidence"):
            table.add_column(column)
        for t in result.triples:
            conf = f"{t.confidence:.3f}" if t.confidence is not None else "-"
            table.add_row(t.arg1, t.rel, t.arg2, conf)
        if not result.triples:
            table.add_row("(nenhuma tripla)", "", "", "")
        console.print(table)


def _print_jsonl(results: list[SentenceResult], model_id: str) -> None:
    for sid, result in enumerate(results):
        for i, t in enumerate(result.triples):
            record = t.to_record(doc_id="stdin", sentence_id=sid, sentence=result.sentence,
                                 extraction_index=i, model_id=model_id)
            print(json.dumps(record, ensure_ascii=False))


def _extract(args: argparse.Namespace) -> int:
    sentences = list(args.sentence)
    if args.file:
        sentences += _read_sentences(args.file)
    if not sentences:
        print("ptoie: error: give a sentence or --file", file=sys.stderr)
        return 2
    try:
        extractor = Extractor(**extractor_options(args), n_threads=args.threads,
                              n_gpu_layers=args.n_gpu_layers)
    except ModelLoadError as exc:
        print(f"ptoie: error: {exc}", file=sys.stderr)
        return 2
    with extractor:
        results = extractor.extract_batch(sentences)
    if args.format == "jsonl":
        _print_jsonl(results, extractor.model_id)
    else:
        _print_table(results)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ptoie", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="extract triples from sentences")
    ex.add_argument("sentence", nargs="*", help="sentence(s) to extract from")
    ex.add_argument("--file", type=Path, help="UTF-8 file with one sentence per line")
    ex.add_argument("--format", choices=["table", "jsonl"], default="table")
    add_extractor_arguments(ex)
    hardware = ex.add_argument_group("hardware")
    hardware.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    hardware.add_argument("--n-gpu-layers", type=int, default=0, help="-1 offloads all layers (GPU build)")
    ex.set_defaults(func=_extract)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``ptoie`` command line: ``ptoie extract "frase"`` / ``ptoie extract --file frases.txt``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .extractor import Extractor, ModelLoadError, SentenceResult


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
        extractor = Extractor(args.model, lora_path=args.lora, n_gpu_layers=args.n_gpu_layers,
                              n_threads=args.threads, temperature=args.temperature, seed=args.seed,
                              grammar=args.grammar)
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
    ex.add_argument("--model", help="GGUF model path (default: the shipped model)")
    ex.add_argument("--lora", help="llama.cpp LoRA-adapter GGUF applied on --model")
    ex.add_argument("--format", choices=["table", "jsonl"], default="table")
    ex.add_argument("--temperature", type=float, default=0.2, help="0 = greedy (default 0.2)")
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--threads", type=int, default=None)
    ex.add_argument("--n-gpu-layers", type=int, default=0, help="-1 offloads all layers (GPU build)")
    ex.add_argument("--grammar", action=argparse.BooleanOptionalAction, default=True,
                    help="constrain output to the answer format (default: on)")
    ex.set_defaults(func=_extract)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

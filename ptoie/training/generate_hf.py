"""Greedy answers of a trained run under transformers: the reference the GGUF path is checked against.

Used to compare runs (LoRA vs FFT, ranks, learning rates) on the validation split before anything is
exported, and to score a model that is not (yet) a GGUF. The prompt is :func:`ptoie.extract.prompt.render_prompt`,
the same text the llama.cpp extractor feeds the model.

    python -m ptoie.training.generate_hf --run runs/X/final --base embedded:smollm2 \
        --sentences sentences.txt --out answers.jsonl

Each output line is ``{"sentence": ..., "answer": ...}``; :func:`ptoie.extract.parser.parse_answer` turns
the answer into triples.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase

from ptoie.extract.prompt import render_prompt
from ptoie.training.base import chat_format_of, dequantized_base, load_tokenizer


def load_run(run_dir: str | Path, *, base_model: str, device: str) -> torch.nn.Module:
    """The model of ``run_dir`` (a peft adapter folder on ``base_model``, or a full model folder)."""
    run_dir = Path(run_dir)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if (run_dir / "adapter_config.json").is_file():
        name, kwargs = dequantized_base(base_model)
        base = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kwargs)
        model = PeftModel.from_pretrained(base, str(run_dir)).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(str(run_dir), dtype=dtype)
    return model.to(device).eval()


@torch.inference_mode()
def generate_answers(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, sentences: Sequence[str],
                     *, batch_size: int = 32, max_new_tokens: int = 160) -> list[str]:
    """Greedy assistant answer for each sentence (left-padded batches; text up to the end of turn)."""
    tokenizer.padding_side = "left"
    fmt = chat_format_of(model)
    end_id = tokenizer.convert_tokens_to_ids(fmt.turn_end)
    device = next(model.parameters()).device
    answers: list[str] = []
    for start in range(0, len(sentences), batch_size):
        chunk = sentences[start:start + batch_size]
        enc = tokenizer([render_prompt(s, fmt) for s in chunk], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(device)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=end_id, pad_token_id=tokenizer.pad_token_id)
        for row in out[:, enc["input_ids"].shape[1]:]:
            answers.append(tokenizer.decode(row, skip_special_tokens=False).split(fmt.turn_end)[0])
    return answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ptoie.training.generate_hf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="adapter or model folder (runs/X/final)")
    parser.add_argument("--base", default="embedded:smollm2", help="base of an adapter run")
    parser.add_argument("--sentences", type=Path, required=True, help="one sentence per line")
    parser.add_argument("--out", type=Path, required=True, help="answers JSONL")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sentences = [line.strip() for line in args.sentences.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    tokenizer = load_tokenizer(args.base if (args.run / "adapter_config.json").is_file() else str(args.run))
    model = load_run(args.run, base_model=args.base, device=device)
    answers = generate_answers(model, tokenizer, sentences, batch_size=args.batch_size,
                               max_new_tokens=args.max_new_tokens)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as handle:
        for sentence, answer in zip(sentences, answers):
            handle.write(json.dumps({"sentence": sentence, "answer": answer}, ensure_ascii=False) + "\n")
    print(f"{len(answers)} answers -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

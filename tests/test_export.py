"""GGUF export checked against transformers/peft, through llama.cpp, for Llama and Qwen2.

Tiny models (2 layers, hidden 64) with a tiny byte-level BPE tokenizer built in the test are first
trained for a few dozen steps to memorise four sentences, so that their greedy continuations are
decisive (an untrained random model just repeats its last token, and its near-tied logits would make
"same greedy output" a coin toss). Weights are rounded to float16 before export, so F16 files hold
exactly the reference weights and only the arithmetic differs.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

from ptoie.cli import train as cli
from ptoie.extract.prompt import render_example, render_prompt
from ptoie.training.export import export_run
from ptoie.training.export_adapter import lora_alpha_for_llama_cpp
from ptoie.training.export_model import _QWEN2_SPLIT, detect_tokenizer_pre, write_model_gguf
from ptoie.training.gguf_layout import ExportError, architecture_of

llama_cpp = pytest.importorskip("llama_cpp")

MEMORISED = [
    "O presidente visitou a cidade de São Paulo em 2019.",
    "Ele mora no Rio de Janeiro há 12 anos.",
    "A empresa, fundada em 1998, vende carros e motos.",
    "Maria disse que o livro é muito bom!",
]
ADAPTED = [  # what the LoRA learns: same first two words, another continuation
    "O presidente cancelou a viagem por causa da chuva.",
    "Ele mora sozinho numa casa pequena perto do mar.",
    "A empresa, segundo o jornal, fechou as portas ontem.",
    "Maria disse que não vai viajar amanhã de manhã.",
]
PROMPTS = ["<|im_start|>" + " ".join(s.split()[:2]) for s in MEMORISED]
CHATML_PROMPT = render_prompt("Em 2019, o presidente visitou 3 cidades: Rio, São Paulo e Recife.")
N_NEW = 10
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models train ~100x faster on one thread than on two contended ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- tiny models ---------------------------------------------------------------------------------

def tiny_tokenizer(arch: str) -> PreTrainedTokenizerFast:
    """Byte-level BPE with the pre-tokenizer of the real family: SmolLM2's (digits split, GPT-2
    regex) for Llama, Qwen2's split regex for Qwen2."""
    tokenizer = Tokenizer(models.BPE())
    if arch == "llama":
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    texts = MEMORISED + ADAPTED + ["".join(render_example(s, [["Ele", "mora", "no Rio"]])) for s in MEMORISED]
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|im_start|>",
                                   eos_token="<|im_end|>", pad_token="<|endoftext|>")


def tiny_config(arch: str, vocab_size: int, **overrides):
    """Shapes of the real bases, shrunk: GQA (4 heads, 2 KV heads), tied embeddings."""
    shape = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                 rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
                 pad_token_id=0)
    shape.update(overrides)
    if arch == "llama":
        return LlamaConfig(**shape, rope_theta=100000.0)
    return Qwen2Config(**shape, rope_theta=1000000.0)


def train_lm(model: torch.nn.Module, tokenizer, texts: list[str], *, steps: int, lr: float) -> float:
    """A few full-batch AdamW steps of next-token loss on ``texts``; returns the last loss."""
    batch = tokenizer([f"<|im_start|>{t}<|im_end|>" for t in texts], add_special_tokens=False,
                      padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    return float(loss.detach())


def round_to_f16(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())


@torch.inference_mode()
def hf_logits(model: torch.nn.Module, ids: list[int]) -> np.ndarray:
    return model(torch.tensor([ids])).logits[0].float().numpy()


@torch.inference_mode()
def hf_greedy(model: torch.nn.Module, ids: list[int], n: int = N_NEW) -> list[int]:
    ids = list(ids)
    for _ in range(n):
        ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[-n:]


class LlamaCpp:
    """llama.cpp through llama-cpp-python, all logits kept."""

    def __init__(self, model_path: Path, lora_path: Path | None = None):
        self.llm = llama_cpp.Llama(str(model_path), lora_path=str(lora_path) if lora_path else None,
                                   n_ctx=256, n_threads=1, logits_all=True, verbose=False)

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def logits(self, ids: list[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(ids)
        return np.array(self.llm.scores[: len(ids)])

    def greedy(self, ids: list[int], n: int = N_NEW) -> list[int]:
        self.llm.reset()
        self.llm.eval(ids)
        out: list[int] = []
        for _ in range(n):
            out.append(int(np.argmax(self.llm.scores[self.llm.n_tokens - 1])))
            self.llm.eval([out[-1]])
        return out

    def close(self) -> None:
        self.llm.close()


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def tiny_base(request, tmp_path_factory):
    """``(arch, folder, model, tokenizer)``: a tiny base that memorised MEMORISED, saved as an HF folder."""
    arch = request.param
    tokenizer = tiny_tokenizer(arch)
    torch.manual_seed(0)
    # 5 padding rows past the tokenizer: llama.cpp needs one token per embedding row
    model = AutoModelForCausalLM.from_config(tiny_config(arch, len(tokenizer) + 5))
    if arch == "qwen2":  # non-zero q/k/v biases, so that dropping or misplacing them shows
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name.endswith("_proj.bias"):
                    parameter.normal_(0.0, 0.3)
    loss = train_lm(model, tokenizer, MEMORISED, steps=60, lr=1e-2)
    assert loss < 0.5, f"the tiny {arch} did not memorise its corpus (loss {loss:.2f})"
    round_to_f16(model)
    folder = tmp_path_factory.mktemp(f"{arch}-base")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return arch, folder, model, tokenizer


def _metadata(path: Path) -> dict:
    reader = gguf.GGUFReader(path)
    return {name: f.contents() for name, f in reader.fields.items()}, {t.name: t for t in reader.tensors}


# --- merged / full model ---------------------------------------------------------------------------

def test_f16_gguf_matches_transformers(tiny_base, tmp_path):
    arch, folder, model, tokenizer = tiny_base
    (exported,) = export_run(folder, out_dir=tmp_path, merged=["f16"], name="tiny")
    assert exported.path == tmp_path / "tiny-f16.gguf" and exported.kind == "model"
    fields, tensors = _metadata(exported.path)
    assert fields["general.architecture"] == arch
    assert fields[f"{arch}.block_count"] == 2 and fields[f"{arch}.attention.head_count_kv"] == 2
    assert fields["tokenizer.ggml.pre"] == ("smollm" if arch == "llama" else "qwen2")
    assert fields["tokenizer.ggml.eos_token_id"] == tokenizer.eos_token_id
    assert "output.weight" not in tensors  # tied: llama.cpp reuses token_embd
    assert ("blk.0.attn_q.bias" in tensors) == (arch == "qwen2")
    assert tensors["blk.0.attn_q.weight"].tensor_type == gguf.GGMLQuantizationType.F16

    llm = LlamaCpp(exported.path)
    try:
        chat_ids = tokenizer(CHATML_PROMPT, add_special_tokens=False)["input_ids"]
        assert llm.tokenize(CHATML_PROMPT) == chat_ids, "llama.cpp splits the prompt differently"
        reference = hf_logits(model, chat_ids)
        np.testing.assert_allclose(llm.logits(chat_ids), reference, atol=0.02 * reference.std())
        for prompt in PROMPTS:
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            assert llm.tokenize(prompt) == ids
            assert llm.greedy(ids) == hf_greedy(model, ids), prompt
    finally:
        llm.close()


def test_q8_0_gguf_is_close_to_transformers(tiny_base, tmp_path):
    arch, folder, model, tokenizer = tiny_base
    (exported,) = export_run(folder, out_dir=tmp_path, merged=["q8_0"], name="tiny")
    fields, tensors = _metadata(exported.path)
    assert fields["general.file_type"] == gguf.LlamaFileType.MOSTLY_Q8_0
    for name, tensor in tensors.items():
        expected = gguf.GGMLQuantizationType.Q8_0 if len(tensor.shape) == 2 else gguf.GGMLQuantizationType.F32
        assert tensor.tensor_type == expected, name
    # Q8_0: blocks of 32 weights, step d = block max / 127 stored as float16, so each weight is
    # within d/2 (rounding) + 127 * d * 2**-11 (the float16 scale) of the original: < 0.6 d
    down = model.model.layers[1].mlp.down_proj.weight.detach().numpy()
    stored = gguf.quants.dequantize(tensors["blk.1.ffn_down.weight"].data, gguf.GGMLQuantizationType.Q8_0)
    step = np.abs(down.reshape(-1, 32)).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(stored.reshape(-1, 32) - down.reshape(-1, 32)) < 0.6 * step)

    # llama.cpp also rounds activations to 8 bits for Q8_0 matrices; on these tiny models the two
    # roundings move logits by up to ~12% of their spread (measured), F16 by < 1%: hence 25% here
    llm = LlamaCpp(exported.path)
    try:
        for text in MEMORISED:
            ids = tokenizer(f"<|im_start|>{text}", add_special_tokens=False)["input_ids"]
            reference = hf_logits(model, ids)
            np.testing.assert_allclose(llm.logits(ids), reference, atol=0.25 * reference.std())
        for prompt in PROMPTS:
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            assert llm.greedy(ids) == hf_greedy(model, ids), prompt
    finally:
        llm.close()


# --- LoRA adapter ------------------------------------------------------------------------------------

def test_lora_adapter_gguf_reproduces_peft(tiny_base, tmp_path, capsys):
    from peft import LoraConfig, get_peft_model
    arch, folder, base_model, tokenizer = tiny_base
    torch.manual_seed(1)
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    peft_model = get_peft_model(copy.deepcopy(base_model), lora)
    train_lm(peft_model, tokenizer, ADAPTED, steps=40, lr=1e-2)
    with torch.no_grad():  # the adapter GGUF stores A and B as float16
        for name, parameter in peft_model.named_parameters():
            if "lora_" in name:
                parameter.copy_(parameter.half().float())
    run = tmp_path / "run" / "final"
    peft_model.save_pretrained(run)

    assert cli.main(["export", "--run", str(run), "--base", str(folder), "--out", str(tmp_path / "gguf"),
                     "--merged", "f16"]) == 0
    written = {f["kind"]: Path(f["path"]) for f in json.loads(capsys.readouterr().out)}
    assert written["adapter"].name == "run-lora-f16.gguf"
    fields, tensors = _metadata(written["adapter"])
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == 16.0 and fields["general.architecture"] == arch
    assert len(tensors) == 2 * 7 * 2 and "blk.1.attn_k.weight.lora_b" in tensors
    (base_gguf,) = export_run(folder, out_dir=tmp_path / "base", merged=["f16"])

    plain = LlamaCpp(base_gguf.path)
    adapted = LlamaCpp(base_gguf.path, lora_path=written["adapter"])
    merged = LlamaCpp(written["model"])
    try:
        chat_ids = tokenizer(CHATML_PROMPT, add_special_tokens=False)["input_ids"]
        reference = hf_logits(peft_model, chat_ids)
        np.testing.assert_allclose(adapted.logits(chat_ids), reference, atol=0.02 * reference.std())
        np.testing.assert_allclose(merged.logits(chat_ids), reference, atol=0.02 * reference.std())
        changed = 0
        for prompt in PROMPTS:
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            expected = hf_greedy(peft_model, ids)
            assert adapted.greedy(ids) == expected, prompt
            assert merged.greedy(ids) == expected, prompt
            changed += plain.greedy(ids) != expected
        assert changed == len(PROMPTS), "the adapter should change every continuation of the base"
    finally:
        for llm in (plain, adapted, merged):
            llm.close()


# --- the embedded base's tokenizer ---------------------------------------------------------------------

def test_embedded_smollm2_tokenizer_is_carried_over(tmp_path):
    """A run on ``embedded:smollm2`` gets the tokenizer of the SmolLM2 GGUF, copied key by key; the
    tokenizer rebuilt from transformers has the same tokens, types and merges."""
    from ptoie.resources import embedded_base_gguf
    from ptoie.training.train import load_tokenizer
    source = embedded_base_gguf()
    source_fields, _ = _metadata(source)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        tiny_config("llama", source_fields["llama.vocab_size"], num_hidden_layers=1))
    copied = write_model_gguf(model, tmp_path / "copied.gguf", file_type="f16", tokenizer_source=source)
    hf_folder = tmp_path / "hf-tokenizer"
    tokenizer = load_tokenizer("embedded:smollm2")
    tokenizer.save_pretrained(hf_folder)
    rebuilt = write_model_gguf(model, tmp_path / "rebuilt.gguf", file_type="f16", tokenizer_source=hf_folder)
    copied_fields, _ = _metadata(copied)
    rebuilt_fields, _ = _metadata(rebuilt)
    for key in [k for k in source_fields if k.startswith("tokenizer.")]:
        assert copied_fields[key] == source_fields[key], key
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                "tokenizer.ggml.eos_token_id"):
        assert rebuilt_fields[key] == source_fields[key], key

    llm = LlamaCpp(copied)
    try:
        assert llm.tokenize(CHATML_PROMPT) == tokenizer(CHATML_PROMPT, add_special_tokens=False)["input_ids"]
    finally:
        llm.close()


# --- refusals with a reason ---------------------------------------------------------------------------------

def test_unsupported_inputs_are_refused_with_the_reason():
    with pytest.raises(ExportError, match="supported: \\['gemma3_text', 'llama', 'qwen2'\\]"):
        architecture_of(type("Config", (), {"model_type": "gpt2"})())
    with pytest.raises(ExportError, match="DoRA"):
        lora_alpha_for_llama_cpp({"r": 8, "lora_alpha": 16, "use_dora": True})
    with pytest.raises(ExportError, match="--tokenizer-pre"):
        detect_tokenizer_pre({"type": "Metaspace", "replacement": "▁"})
    assert lora_alpha_for_llama_cpp({"r": 16, "lora_alpha": 32}) == 32
    # rsLoRA scales by alpha/sqrt(r); llama.cpp by alpha/r
    assert lora_alpha_for_llama_cpp({"r": 16, "lora_alpha": 32, "use_rslora": True}) == 32 * math.sqrt(16)

"""Training on a Gemma 3 base: its own turn markup, resume after a stop, the llama.cpp adapter GGUF.

A tiny random Gemma-3-shaped model (2 layers, sliding and global attention) stands in for
google/gemma-3-270m; the real base is exercised by tests/test_default_model.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, Gemma3TextConfig, LlamaConfig

from ptoie.extract.prompt import GEMMA, render_example
from ptoie.training.base import chat_format_of, load_base_config
from ptoie.training.config import TrainConfig
from ptoie.training.prepare import prepare, write_jsonl
from ptoie.training.train import IGNORE_INDEX, encode_example, load_tokenizer, train

from test_training_models import tiny_bpe_tokenizer

FIXTURE = Path(__file__).parent / "fixtures" / "training" / "tiny.conll"
GEMMA_SPECIAL = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"]


def tiny_gemma_folder(folder: Path) -> Path:
    """A 2-layer random Gemma 3 (one sliding-window layer, one global) and a small BPE tokenizer
    holding Gemma's special tokens."""
    hf_tokenizer = tiny_bpe_tokenizer(GEMMA_SPECIAL, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(Gemma3TextConfig(
        vocab_size=len(hf_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16,
        sliding_window=16, layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=512, pad_token_id=0, eos_token_id=1, bos_token_id=2))
    model.save_pretrained(folder)
    hf_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def gemma_base(tmp_path_factory) -> Path:
    return tiny_gemma_folder(tmp_path_factory.mktemp("gemma") / "base")


def test_a_gemma_base_is_trained_in_its_own_turn_markup(gemma_base):
    assert chat_format_of(load_base_config(str(gemma_base))) is GEMMA
    tokenizer = load_tokenizer(str(gemma_base))
    triples = [["Ele", "mora", "no Rio"]]
    example = encode_example(tokenizer, "Ele mora no Rio.", triples, GEMMA)
    labels = example["labels"]
    first = next(i for i, x in enumerate(labels) if x != IGNORE_INDEX)
    prompt, completion = render_example("Ele mora no Rio.", triples, GEMMA)
    assert tokenizer.decode(example["input_ids"][:first]) == prompt
    assert tokenizer.decode(labels[first:]) == completion
    # the answer ends on ONE token, the end-of-turn the grammar and the backend stop on
    assert labels[-1] == tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert example["input_ids"][0] == tokenizer.convert_tokens_to_ids("<bos>")


def test_a_stopped_run_resumes_to_the_same_adapter(gemma_base, tmp_path, restore_torch_threads):
    data = prepare([FIXTURE], validation_fraction=0.5, seed=3)
    write_jsonl(data.train, tmp_path / "train.jsonl")
    settings = dict(base_model=str(gemma_base), method="lora", lora_r=4, lora_alpha=8, lora_dropout=0.0,
                    train_file=str(tmp_path / "train.jsonl"), validation_file=None, max_length=512,
                    learning_rate=1e-2,
                    warmup_steps=0, per_device_batch_size=1, logging_steps=1, save_steps=2, max_steps=4,
                    device="cpu", threads=1, seed=0)
    whole = train(TrainConfig.from_dict({**settings, "output_dir": str(tmp_path / "whole")}))
    assert whole["global_steps"] == 4 and whole["resumed_from"] is None

    stopped = tmp_path / "stopped"
    train(TrainConfig.from_dict({**settings, "output_dir": str(stopped)}))
    for later in ("checkpoint-4", "final"):           # as if the run had been stopped after step 3
        shutil.rmtree(stopped / later)
    resumed = train(TrainConfig.from_dict({**settings, "output_dir": str(stopped)}))
    assert resumed["resumed_from"].endswith("checkpoint-2") and resumed["global_steps"] == 4

    want = load_file(str(tmp_path / "whole" / "final" / "adapter_model.safetensors"))
    got = load_file(str(stopped / "final" / "adapter_model.safetensors"))
    assert want.keys() == got.keys() and len(want) == 2 * 7 * 2
    assert any(t.abs().sum() > 0 for k, t in want.items() if "lora_B" in k)   # it did train
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=0)


def test_gemma_lora_exports_as_a_llama_cpp_adapter_and_reads_back(gemma_base, tmp_path):
    from peft import LoraConfig, get_peft_model

    from ptoie.training.export_adapter import hf_lora_pairs, write_lora_adapter_gguf
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(gemma_base),
                           LoraConfig(r=4, lora_alpha=8, target_modules=targets, task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn_like(p))
    model.save_pretrained(tmp_path / "adapter")
    config = model.get_base_model().config
    path = write_lora_adapter_gguf(tmp_path / "adapter", tmp_path / "a.gguf", base_config=config, dtype="f32")
    hf_names = [f"model.layers.{i}.{part}.{t}.weight" for i in range(2)
                for part, names in (("self_attn", targets[:4]), ("mlp", targets[4:])) for t in names]
    alpha, pairs = hf_lora_pairs(path, base_config=config, hf_names=hf_names)
    assert alpha == 8 and len(pairs) == 14
    state = {n: p for n, p in model.named_parameters() if "lora_" in n}
    for hf_name, (a, b) in pairs.items():
        stem = "base_model.model." + hf_name.removesuffix(".weight")
        torch.testing.assert_close(torch.from_numpy(a), state[f"{stem}.lora_A.default.weight"])
        torch.testing.assert_close(torch.from_numpy(b), state[f"{stem}.lora_B.default.weight"])
    with pytest.raises(ValueError, match="1 LoRA pair.*does not adapt, e.g. 'blk.1.ffn_down.weight'"):
        hf_lora_pairs(path, base_config=config, hf_names=hf_names[:-1])
    with pytest.raises(ValueError, match="adapter for 'gemma3', base is 'llama'"):
        hf_lora_pairs(path, base_config=LlamaConfig(num_hidden_layers=2), hf_names=hf_names)

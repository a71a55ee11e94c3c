"""The paper's LoRA shape on Qwen2-0.5B, the shipped training configs, and a real 2-step training run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

from ptoie.training.config import TrainConfig
from ptoie.training.prepare import prepare, write_jsonl
from ptoie.training.train import train

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"
FIXTURE = Path(__file__).parent / "fixtures" / "training" / "tiny.conll"
PAPER_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def qwen2_0_5b_config() -> Qwen2Config:
    """Qwen/Qwen2-0.5B's config.json, field by field (no download)."""
    return Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=131072,
                       rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True)


def test_paper_lora_on_qwen2_0_5b_has_35_192_832_trainable_parameters():
    from peft import LoraConfig, get_peft_model
    config = TrainConfig.from_yaml(CONFIGS / "qwen2-0.5b-lora.yaml")
    with torch.device("meta"):  # shapes only: no memory, no weights
        model = AutoModelForCausalLM.from_config(qwen2_0_5b_config())
        model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                                 lora_dropout=config.lora_dropout, task_type="CAUSAL_LM",
                                                 target_modules=config.lora_target_modules))
    trainable, total = model.get_nb_trainable_parameters()
    assert trainable == 35_192_832  # the paper's figure
    assert total - trainable == 494_032_768  # Qwen2-0.5B itself (tied embeddings counted once)


@pytest.mark.parametrize("name, method, batch, accumulation", [
    ("qwen2-0.5b-lora", "lora", 16, 4),
    ("qwen2-0.5b-fft", "fft", 8, 8),
])
def test_paper_configs_carry_the_paper_settings(name, method, batch, accumulation):
    config = TrainConfig.from_yaml(CONFIGS / f"{name}.yaml")
    assert config.method == method and config.base_model == "Qwen/Qwen2-0.5B"
    assert (config.per_device_batch_size, config.gradient_accumulation_steps) == (batch, accumulation)
    assert config.per_device_batch_size * config.gradient_accumulation_steps == 64
    assert (config.learning_rate, config.lr_scheduler, config.epochs, config.warmup_steps) == (5e-5, "cosine", 3, 10)
    assert (config.precision, config.optimizer, config.gradient_checkpointing) == ("bf16", "paged_adamw_8bit", True)
    if method == "lora":
        assert (config.lora_r, config.lora_alpha, config.lora_dropout) == (64, 128, 0.05)
        assert config.lora_target_modules == PAPER_TARGETS


def test_cpu_fft_config_fits_a_cpu():
    config = TrainConfig.from_yaml(CONFIGS / "smollm2-135m-fft-cpu.yaml")
    assert (config.method, config.base_model, config.device) == ("fft", "embedded:smollm2", "cpu")
    assert (config.precision, config.optimizer) == ("fp32", "adamw_torch")
    assert config.max_minutes is not None and config.threads is not None


# --- a real (tiny) training run ------------------------------------------------------------------

def tiny_bpe_tokenizer(special_tokens: list[str], **named_tokens: str) -> PreTrainedTokenizerFast:
    """A 300-token byte-level BPE tokenizer trained on a few Portuguese lines, holding
    ``special_tokens``; ``named_tokens`` are its roles (``eos_token="<|im_end|>"`` ...)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(
        ["Ele mora no Rio.", "Ela canta.", "Extraia as triplas (sujeito | relação | objeto) da frase."],
        trainers.BpeTrainer(vocab_size=300, special_tokens=special_tokens,
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **named_tokens)


def _tiny_llama_folder(folder: Path) -> Path:
    """A 2-layer random Llama and a 300-token byte-level BPE tokenizer with the ChatML markers."""
    hf_tokenizer = tiny_bpe_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                      eos_token="<|im_end|>", pad_token="<|endoftext|>")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(LlamaConfig(
        vocab_size=len(hf_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True))
    model.save_pretrained(folder)
    hf_tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("side", ["right", "left"])
def test_batches_are_right_padded_with_the_pad_token_and_labels_with_minus_100(side):
    from ptoie.training.train import IGNORE_INDEX, answer_collator
    tokenizer = tiny_bpe_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                   eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.padding_side = side
    pad, ignore = tokenizer.pad_token_id, IGNORE_INDEX
    batch = answer_collator(tokenizer)([
        {"input_ids": [5, 6, 7, 8, 9], "labels": [ignore, ignore, ignore, 8, 9]},
        {"input_ids": [10, 11], "labels": [ignore, 11]},
        {"input_ids": [12, 13, 14], "labels": [ignore, ignore, 14]},
    ])
    assert sorted(batch) == ["attention_mask", "input_ids", "labels"]
    assert all(tensor.dtype == torch.long for tensor in batch.values())
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [10, 11, pad, pad, pad], [12, 13, 14, pad, pad]]
    assert batch["labels"].tolist() == [[ignore, ignore, ignore, 8, 9], [ignore, 11, ignore, ignore, ignore],
                                        [ignore, ignore, 14, ignore, ignore]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]]
    assert tokenizer.padding_side == side  # the tokenizer saved with the run keeps its own side


def test_two_step_lora_training_writes_report_and_resumes(tmp_path, restore_torch_threads):
    base = _tiny_llama_folder(tmp_path / "base")
    data = prepare([FIXTURE], validation_fraction=0.5, seed=3)
    write_jsonl(data.train, tmp_path / "train.jsonl")
    write_jsonl(data.validation, tmp_path / "val.jsonl")
    settings = dict(base_model=str(base), method="lora", lora_r=4, lora_alpha=8,
                    train_file=str(tmp_path / "train.jsonl"), validation_file=str(tmp_path / "val.jsonl"),
                    max_length=512, learning_rate=1e-3, warmup_steps=0, per_device_batch_size=1,
                    logging_steps=1, save_steps=1, device="cpu", threads=1, output_dir=str(tmp_path / "run"))

    report = train(TrainConfig.from_dict({**settings, "max_steps": 2}))
    run = tmp_path / "run"
    assert report["global_steps"] == 2 and report["resumed_from"] is None
    assert json.loads((run / "report.json").read_text())["global_steps"] == 2
    assert (run / "loss.png").stat().st_size > 0
    assert (run / "final" / "adapter_config.json").is_file()
    assert (run / "final" / "tokenizer.json").is_file()
    assert report["trainable_parameters"] == 2 * 4 * (  # r=4 on the 7 projections of 2 layers
        (32 + 32) + (32 + 16) + (32 + 16) + (32 + 32) + 3 * (32 + 64))
    assert report["validation_loss"] is not None and report["train_loss"] > 0

    resumed = train(TrainConfig.from_dict({**settings, "max_steps": 3}))
    assert resumed["resumed_from"].endswith("checkpoint-2")
    assert resumed["global_steps"] == 3


@pytest.mark.parametrize("lora", [False, True])
def test_answer_only_head_gives_the_models_own_loss_and_gradients(tmp_path, lora):
    from transformers import TrainingArguments

    from ptoie.training.train import IGNORE_INDEX, AnswerLossTrainer
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(LlamaConfig(
        vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, tie_word_embeddings=True))
    if lora:
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=4, target_modules=PAPER_TARGETS, task_type="CAUSAL_LM"))
    ids = torch.randint(3, 97, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0                      # right padding, as answer_collator pads
    labels = ids.clone()
    labels[:, :7] = IGNORE_INDEX         # prompt
    labels[mask == 0] = IGNORE_INDEX
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    trainer = AnswerLossTrainer(model=model, args=TrainingArguments(str(tmp_path), use_cpu=True, report_to=[]))

    def loss_and_grads(loss_fn):
        model.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    fast, fast_grads = loss_and_grads(lambda: trainer.compute_loss(model, inputs))
    stock, stock_grads = loss_and_grads(lambda: model(**inputs).loss)
    assert fast == pytest.approx(stock, rel=1e-5)
    for a, b in zip(fast_grads, stock_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


# --- continuing from a shipped adapter ------------------------------------------------------------

def test_lora_gguf_reads_back_into_peft_for_a_warm_start(tmp_path, restore_torch_threads):
    """export (peft -> llama.cpp GGUF, q/k B rows permuted) then init_adapter (GGUF -> peft,
    un-permuted) gives back the adapter's own tensors, and a warm-started run starts from them."""
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file

    from ptoie.training.export_adapter import write_lora_adapter_gguf
    from ptoie.training.train import load_model
    base = _tiny_llama_folder(tmp_path / "base")
    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, lora_alpha=8, target_modules=PAPER_TARGETS, task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn_like(p))          # B is zero at init: make every row distinct
    model.save_pretrained(tmp_path / "adapter")
    gguf_path = write_lora_adapter_gguf(tmp_path / "adapter", tmp_path / "a.gguf",
                                        base_config=model.get_base_model().config, dtype="f32")
    settings = dict(base_model=str(base), method="lora", lora_r=4, lora_alpha=8, lora_dropout=0.0,
                    device="cpu", threads=1)
    for init in (gguf_path, tmp_path / "adapter"):
        warm = load_model(TrainConfig.from_dict({**settings, "init_adapter": str(init)}), "cpu")
        got = {n: p for n, p in warm.named_parameters() if "lora_" in n}
        want = {n: p for n, p in model.named_parameters() if "lora_" in n}
        assert got.keys() == want.keys() and len(got) == 2 * 7 * 2
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=0, atol=0)
    saved = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    assert len(saved) == 28

    with pytest.raises(ValueError, match="rank 4"):
        load_model(TrainConfig.from_dict({**settings, "lora_r": 8, "lora_alpha": 16,
                                          "init_adapter": str(gguf_path)}), "cpu")
    with pytest.raises(ValueError, match="scale"):
        load_model(TrainConfig.from_dict({**settings, "lora_alpha": 4, "init_adapter": str(gguf_path)}), "cpu")
    with pytest.raises(FileNotFoundError):
        load_model(TrainConfig.from_dict({**settings, "init_adapter": str(tmp_path / "none.gguf")}), "cpu")


def test_repeat_multi_triple_repeats_only_answers_with_several_lines():
    from ptoie.training.train import repeat_multi_triple
    records = [{"triples": [["a", "b", "c"]]}, {"triples": [["a", "b", "c"], ["d", "e", "f"]]}, {"triples": []}]
    assert [len(r["triples"]) for r in repeat_multi_triple(records, 3)] == [1, 2, 2, 2, 0]
    assert repeat_multi_triple(records, 1) == records
    with pytest.raises(Exception, match="repeat_multi_triple"):
        TrainConfig.from_dict({"base_model": "x", "repeat_multi_triple": 0})
    with pytest.raises(Exception, match="init_adapter"):
        TrainConfig.from_dict({"base_model": "x", "method": "fft", "init_adapter": "a.gguf"})

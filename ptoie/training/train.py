"""One trainer for LoRA and full fine-tuning (transformers + peft), CPU or CUDA.

:func:`train` loads the base model (HF id, folder, GGUF file or ``embedded:smollm2``), tokenises
the ``prepare`` JSONL with loss on the assistant tokens only (labels ``-100`` on the prompt, via
:func:`ptoie.extract.prompt.render_example`), trains with length-grouped batches, resumes from the last
checkpoint of ``output_dir``, saves the adapter (or model) under ``output_dir/final`` and writes
``report.json`` + ``loss.png`` (wall time, samples/s, tokens/s, peak RSS/VRAM, trainable
parameters, GPU energy when NVML is available).
"""

from __future__ import annotations

import json
import logging
import math
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase, Trainer,
                          TrainerCallback, TrainingArguments, set_seed)
from transformers.trainer_utils import get_last_checkpoint

from ptoie.extract.prompt import ChatFormat, render_example
from ptoie.training.base import chat_format_of, dequantized_base, load_base_config, load_tokenizer
from ptoie.training.config import TrainConfig
from ptoie.training.prepare import read_jsonl

log = logging.getLogger("ptoie.train")

IGNORE_INDEX = -100


def encode_example(tokenizer: PreTrainedTokenizerBase, sentence: str,
                   triples: list[list[str]], fmt: ChatFormat) -> dict[str, list[int]]:
    """``input_ids``/``labels`` of one record; labels are ``-100`` on every prompt token."""
    prompt, completion = render_example(sentence, triples, fmt)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    return {"input_ids": prompt_ids + completion_ids,
            "labels": [IGNORE_INDEX] * len(prompt_ids) + completion_ids}


class ChatDataset(torch.utils.data.Dataset):
    """Tokenised records; examples over ``max_length`` are dropped (counted in ``n_too_long``)."""

    def __init__(self, records: list[dict], tokenizer: PreTrainedTokenizerBase, max_length: int,
                 fmt: ChatFormat):
        self.examples = []
        self.n_too_long = 0
        for record in records:
            example = encode_example(tokenizer, record["sentence"], record["triples"], fmt)
            if len(example["input_ids"]) > max_length:
                self.n_too_long += 1
            else:
                self.examples.append(example)
        self.lengths = [len(e["input_ids"]) for e in self.examples]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.examples[index]


@dataclass(slots=True)
class PadCollator:
    """Right-pads ``input_ids`` with ``pad_id``, ``labels`` with -100, and builds the attention mask."""

    pad_id: int

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[row, :n] = torch.tensor(b["input_ids"])
            labels[row, :n] = torch.tensor(b["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _device(config: TrainConfig) -> str:
    if config.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda requested but torch sees no CUDA GPU; set device: auto or cpu")
    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.device


def training_arguments(config: TrainConfig, device: str) -> TrainingArguments:
    """Explicit mapping of :class:`TrainConfig` to ``TrainingArguments`` (device-aware precision/optimiser)."""
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if device == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision in ("bf16", "fp16") and device != "cuda":
        log.warning("precision %s needs CUDA; training in fp32 on CPU", precision)
        precision = "fp32"
    optimizer = config.optimizer
    if optimizer in ("auto", "paged_adamw_8bit"):
        try:
            import bitsandbytes  # noqa: F401
            has_bnb = True
        except ImportError:
            has_bnb = False
        if device == "cuda" and has_bnb:
            optimizer = "paged_adamw_8bit"
        else:
            if optimizer == "paged_adamw_8bit":
                log.warning("paged_adamw_8bit needs CUDA and bitsandbytes (device=%s, bitsandbytes %s); "
                            "falling back to adamw_torch", device, "found" if has_bnb else "missing")
            optimizer = "adamw_torch"
    log.info("device=%s precision=%s optimizer=%s", device, precision, optimizer)
    return TrainingArguments(
        output_dir=config.output_dir,
        per_device_train_batch_size=config.per_device_batch_size,
        per_device_eval_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        weight_decay=config.weight_decay,
        optim=optimizer,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=device == "cpu",
        gradient_checkpointing=config.gradient_checkpointing,
        train_sampling_strategy="group_by_length",
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        eval_strategy="steps" if config.eval_steps and config.validation_file else "no",
        eval_steps=config.eval_steps,
        seed=config.seed,
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


class AnswerLossTrainer(Trainer):
    """``Trainer`` that runs the LM head only where the loss is counted (the assistant's answer).

    The answer is about a sixth of each example's tokens, and the head (vocabulary x hidden, 49k x
    576 for SmolLM2) plus its softmax is the largest single cost of a step on CPU; the loss is the
    same token-mean cross-entropy the model's own ``forward(labels=...)`` computes. Models whose
    head does more than a linear layer (logit scaling/soft-capping) and distributed wrappers take
    the stock path.
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        plain_head = not any(getattr(base.config, k, None) for k in ("final_logit_softcapping", "logit_scale"))
        if return_outputs or not plain_head or isinstance(model, torch.nn.parallel.DistributedDataParallel):
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        hidden = base.get_decoder()(input_ids=inputs["input_ids"],
                                    attention_mask=inputs["attention_mask"]).last_hidden_state
        targets = inputs["labels"][:, 1:]
        keep = targets != IGNORE_INDEX
        logits = base.get_output_embeddings()(hidden[:, :-1][keep]).float()
        loss = torch.nn.functional.cross_entropy(logits, targets[keep], reduction="sum")
        return loss / (num_items_in_batch if num_items_in_batch is not None else keep.sum().clamp(min=1))


class TimeBudget(TrainerCallback):
    """Stops training (with a final save) once ``max_minutes`` of wall time are spent."""

    def __init__(self, max_minutes: float):
        self.deadline = time.monotonic() + 60.0 * max_minutes
        self.hit = False

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102 - transformers hook
        if time.monotonic() >= self.deadline:
            self.hit = True
            control.should_training_stop = True
            control.should_save = True
        return control


def _energy_mj() -> float | None:
    try:
        import pynvml
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        return float(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    except Exception:  # noqa: BLE001 - NVML absent or unsupported: no energy figure
        return None


def load_model(config: TrainConfig, device: str) -> torch.nn.Module:
    """Base model, wrapped in a peft LoRA when ``method: lora``."""
    name, kwargs = dequantized_base(config.base_model)
    model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32, **kwargs)
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model
        lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=list(config.lora_target_modules), task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
        if config.init_adapter:
            n = load_initial_adapter(model, config)
            log.info("LoRA initialised from %s (%d adapted layers)", config.init_adapter, n)
        if config.gradient_checkpointing:
            model.enable_input_require_grads()
    return model.to(device)


def load_initial_adapter(model: torch.nn.Module, config: TrainConfig) -> int:
    """Copy ``config.init_adapter`` (llama.cpp LoRA GGUF or peft folder) into the fresh peft LoRA of
    ``model``; returns the number of adapted layers. Rank and scale must be the config's."""
    path = Path(config.init_adapter)
    layers = {name: module for name, module in model.named_modules()
              if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {})}
    prefix = "base_model.model."
    if path.is_dir():
        from peft import set_peft_model_state_dict
        from ptoie.training.export import _read_adapter
        adapter_config, weights = _read_adapter(path)
        if (adapter_config["r"], adapter_config["lora_alpha"]) != (config.lora_r, config.lora_alpha):
            raise ValueError(f"init_adapter {path}: r={adapter_config['r']} alpha={adapter_config['lora_alpha']}"
                             f", config has lora_r={config.lora_r} lora_alpha={config.lora_alpha}")
        result = set_peft_model_state_dict(model, weights)
        if result.unexpected_keys:
            raise ValueError(f"init_adapter {path}: tensors for layers the model does not adapt, "
                             f"e.g. {result.unexpected_keys[0]!r}")
        return len(layers)
    if not path.is_file():
        raise FileNotFoundError(f"init_adapter {str(path)!r}: no such file or folder")
    from ptoie.training.export import read_lora_adapter_gguf
    hf_names = {name: name.removeprefix(prefix) + ".weight" for name in layers}
    alpha, pairs = read_lora_adapter_gguf(path, base_config=model.get_base_model().config,
                                          hf_names=hf_names.values())
    for name, module in layers.items():
        a, b = pairs[hf_names[name]]
        if a.shape[0] != config.lora_r:
            raise ValueError(f"init_adapter {path}: rank {a.shape[0]}, config has lora_r={config.lora_r}")
        if not math.isclose(alpha / a.shape[0], config.lora_alpha / config.lora_r):
            raise ValueError(f"init_adapter {path}: scale alpha/r = {alpha}/{a.shape[0]}, config has "
                             f"{config.lora_alpha}/{config.lora_r}")
        with torch.no_grad():
            module.lora_A["default"].weight.copy_(torch.from_numpy(a))
            module.lora_B["default"].weight.copy_(torch.from_numpy(b))
    return len(layers)


def repeat_multi_triple(records: list[dict], times: int) -> list[dict]:
    """``records`` with every record of two or more triples repeated ``times`` times (in place order)."""
    return [r for r in records for _ in range(times if len(r["triples"]) >= 2 else 1)]


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def plot_loss(history: list[dict[str, Any]], path: Path) -> None:
    """PNG of training (and validation) loss against the step."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    val = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    fig, ax = plt.subplots(figsize=(6, 4))
    if train:
        ax.plot(*zip(*train), label="train")
    if val:
        ax.plot(*zip(*val), "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (assistant tokens)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def train(config: TrainConfig) -> dict[str, Any]:
    """Run one training; returns (and writes to ``output_dir/report.json``) the training report."""
    if config.threads:
        torch.set_num_threads(config.threads)
    device = _device(config)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(config.base_model)
    records = read_jsonl(config.train_file)
    if config.max_train_samples is not None:
        records = records[: config.max_train_samples]
    n_records = len(records)
    records = repeat_multi_triple(records, config.repeat_multi_triple)
    fmt = chat_format_of(load_base_config(config.base_model))
    train_set = ChatDataset(records, tokenizer, config.max_length, fmt)
    val_set = (ChatDataset(read_jsonl(config.validation_file), tokenizer, config.max_length, fmt)
               if config.validation_file else None)
    log.info("train examples %d (%d over max_length %d dropped)", len(train_set),
             train_set.n_too_long, config.max_length)
    set_seed(config.seed)  # before the model: peft draws the LoRA A matrices from the global RNG
    model = load_model(config, device)
    trainable, total = count_parameters(model)
    args = training_arguments(config, device)
    callbacks: list[TrainerCallback] = []
    budget = TimeBudget(config.max_minutes) if config.max_minutes else None
    if budget:
        callbacks.append(budget)
    trainer = AnswerLossTrainer(model=model, args=args, train_dataset=train_set, eval_dataset=val_set,
                      data_collator=PadCollator(tokenizer.pad_token_id), callbacks=callbacks)
    resume = get_last_checkpoint(str(out)) if out.exists() else None
    if resume:
        log.info("resuming from %s", resume)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    energy_start = _energy_mj() if device == "cuda" else None
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    wall = time.perf_counter() - start
    energy_end = _energy_mj() if device == "cuda" else None
    metrics: dict[str, Any] = {}
    if val_set is not None and len(val_set):
        metrics = trainer.evaluate()
    final = out / "final"
    trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    steps = trainer.state.global_step
    samples = steps * config.per_device_batch_size * config.gradient_accumulation_steps
    mean_tokens = sum(train_set.lengths) / max(1, len(train_set))
    report = {
        "config": config.to_dict(),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "optimizer": args.optim if isinstance(args.optim, str) else args.optim.value,
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "resumed_from": resume,
        "stopped_by_time_budget": bool(budget and budget.hit),
        "train_records": n_records,
        "train_records_after_repeat": len(records),
        "train_examples": len(train_set),
        "train_examples_too_long": train_set.n_too_long,
        "validation_examples": len(val_set) if val_set is not None else 0,
        "global_steps": steps,
        "samples_seen": samples,
        "epochs_done": samples / max(1, len(train_set)),
        "train_loss": result.training_loss,
        "validation_loss": metrics.get("eval_loss"),
        "wall_time_s": wall,
        "samples_per_s": samples / wall if wall else None,
        "tokens_per_s": samples * mean_tokens / wall if wall else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_vram_mb": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
        "gpu_energy_wh": ((energy_end - energy_start) / 3.6e6
                          if energy_start is not None and energy_end is not None else None),
        "trainable_parameters": trainable,
        "total_parameters": total,
        "final_dir": str(final),
        "log_history": trainer.state.log_history,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    plot_loss(trainer.state.log_history, out / "loss.png")
    if not math.isfinite(result.training_loss):
        raise RuntimeError(f"training loss is {result.training_loss}; lower learning_rate")
    return report

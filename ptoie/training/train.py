"""One trainer for LoRA and full fine-tuning (transformers + peft), CPU or CUDA.

:func:`train` loads the base model (HF id, folder, GGUF file or ``embedded:smollm2``), tokenises
the ``prepare`` JSONL with loss on the assistant tokens only (labels ``-100`` on the prompt, via
:func:`ptoie.extract.prompt.render_example`), trains with length-grouped batches, resumes from the last
checkpoint of ``output_dir``, saves the adapter (or model) under ``output_dir/final`` and writes
``report.json`` + ``loss.png`` (wall time, samples/s, tokens/s, peak RSS/VRAM, trainable
parameters, GPU energy when NVML is available).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
from transformers import (AutoModelForCausalLM, DataCollatorForSeq2Seq, PreTrainedTokenizerBase, Trainer,
                          TrainerCallback, TrainingArguments, set_seed)
from transformers.trainer_utils import TrainOutput, get_last_checkpoint

from ptoie.extract.prompt import ChatFormat, render_example
from ptoie.training.base import chat_format_of, dequantized_base, load_base_config, load_tokenizer
from ptoie.training.config import TrainConfig
from ptoie.training.export_adapter import hf_lora_pairs, read_peft_adapter
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


def answer_collator(tokenizer: PreTrainedTokenizerBase) -> DataCollatorForSeq2Seq:
    """Batches of :class:`ChatDataset` examples: ``input_ids`` right-padded with the pad token,
    ``labels`` with -100, and the attention mask. Right padding whatever the tokenizer's own side
    (generation pads left): the collator pads with a copy, so the tokenizer saved with the run
    keeps its settings."""
    right = copy.copy(tokenizer)
    right.padding_side = "right"
    return DataCollatorForSeq2Seq(right, label_pad_token_id=IGNORE_INDEX, return_tensors="pt")


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
            import bitsandbytes  # noqa: F401 -- optional (gpu extra): only probed
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
        import pynvml  # optional (gpu extra): energy only where NVML is installed
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
    if path.is_dir():
        _load_peft_folder(model, path, config)
    elif path.is_file():
        _load_lora_gguf(model, layers, path, config)
    else:
        raise FileNotFoundError(f"init_adapter {str(path)!r}: no such file or folder")
    return len(layers)


def _load_peft_folder(model: torch.nn.Module, path: Path, config: TrainConfig) -> None:
    """A peft adapter folder into the LoRA of ``model``."""
    adapter_config, weights = read_peft_adapter(path)
    if (adapter_config["r"], adapter_config["lora_alpha"]) != (config.lora_r, config.lora_alpha):
        raise ValueError(f"init_adapter {path}: r={adapter_config['r']} alpha={adapter_config['lora_alpha']}"
                         f", config has lora_r={config.lora_r} lora_alpha={config.lora_alpha}")
    result = set_peft_model_state_dict(model, weights)
    if result.unexpected_keys:
        raise ValueError(f"init_adapter {path}: tensors for layers the model does not adapt, "
                         f"e.g. {result.unexpected_keys[0]!r}")


def _load_lora_gguf(model: torch.nn.Module, layers: dict[str, torch.nn.Module], path: Path,
                    config: TrainConfig) -> None:
    """A llama.cpp LoRA-adapter GGUF into the LoRA ``layers`` of ``model``."""
    hf_names = {name: name.removeprefix("base_model.model.") + ".weight" for name in layers}
    alpha, pairs = hf_lora_pairs(path, base_config=model.get_base_model().config,
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
    import matplotlib  # late: the Agg backend must be chosen before pyplot is imported
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # late: only after matplotlib.use("Agg")
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


@dataclass(frozen=True, slots=True)
class _Data:
    """The tokenised training (and validation) examples of a run."""

    n_records: int
    """Training records read (after ``max_train_samples``, before ``repeat_multi_triple``)."""
    n_repeated: int
    """Training records after ``repeat_multi_triple``."""
    train: ChatDataset
    validation: ChatDataset | None


@dataclass(frozen=True, slots=True)
class _Timed:
    """What :meth:`Trainer.train` returned, and what it cost."""

    result: TrainOutput
    wall_s: float
    energy_wh: float | None


def _load_data(config: TrainConfig, tokenizer: PreTrainedTokenizerBase) -> _Data:
    """The training and validation files of ``config``, tokenised in the base's prompt format."""
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
    return _Data(n_records, len(records), train_set, val_set)


def _run_timed(trainer: Trainer, resume: str | None, device: str) -> _Timed:
    """``trainer.train`` from ``resume`` (a checkpoint or None), with wall time and GPU energy."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    energy_start = _energy_mj() if device == "cuda" else None
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    wall = time.perf_counter() - start
    energy_end = _energy_mj() if device == "cuda" else None
    energy_wh = ((energy_end - energy_start) / 3.6e6
                 if energy_start is not None and energy_end is not None else None)
    return _Timed(result, wall, energy_wh)


def _report(config: TrainConfig, *, device: str, args: TrainingArguments, data: _Data,
            trainer: Trainer, timed: _Timed, metrics: dict[str, Any], resume: str | None,
            budget: TimeBudget | None, parameters: tuple[int, int], final: Path) -> dict[str, Any]:
    """The training report (``report.json``)."""
    steps = trainer.state.global_step
    samples = steps * config.per_device_batch_size * config.gradient_accumulation_steps
    mean_tokens = sum(data.train.lengths) / max(1, len(data.train))
    wall = timed.wall_s
    return {
        "config": config.to_dict(),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "optimizer": args.optim if isinstance(args.optim, str) else args.optim.value,
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "resumed_from": resume,
        "stopped_by_time_budget": bool(budget and budget.hit),
        "train_records": data.n_records,
        "train_records_after_repeat": data.n_repeated,
        "train_examples": len(data.train),
        "train_examples_too_long": data.train.n_too_long,
        "validation_examples": len(data.validation) if data.validation is not None else 0,
        "global_steps": steps,
        "samples_seen": samples,
        "epochs_done": samples / max(1, len(data.train)),
        "train_loss": timed.result.training_loss,
        "validation_loss": metrics.get("eval_loss"),
        "wall_time_s": wall,
        "samples_per_s": samples / wall if wall else None,
        "tokens_per_s": samples * mean_tokens / wall if wall else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_vram_mb": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
        "gpu_energy_wh": timed.energy_wh,
        "trainable_parameters": parameters[0],
        "total_parameters": parameters[1],
        "final_dir": str(final),
        "log_history": trainer.state.log_history,
    }


def train(config: TrainConfig) -> dict[str, Any]:
    """Run one training; returns (and writes to ``output_dir/report.json``) the training report."""
    if config.threads:
        torch.set_num_threads(config.threads)
    device = _device(config)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(config.base_model)
    data = _load_data(config, tokenizer)
    set_seed(config.seed)  # before the model: peft draws the LoRA A matrices from the global RNG
    model = load_model(config, device)
    parameters = count_parameters(model)
    args = training_arguments(config, device)
    budget = TimeBudget(config.max_minutes) if config.max_minutes else None
    trainer = AnswerLossTrainer(model=model, args=args, train_dataset=data.train,
                                eval_dataset=data.validation, data_collator=answer_collator(tokenizer),
                                callbacks=[budget] if budget else [])
    resume = get_last_checkpoint(str(out))
    if resume:
        log.info("resuming from %s", resume)
    timed = _run_timed(trainer, resume, device)
    metrics = trainer.evaluate() if data.validation is not None and len(data.validation) else {}
    final = out / "final"
    trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    report = _report(config, device=device, args=args, data=data, trainer=trainer, timed=timed,
                     metrics=metrics, resume=resume, budget=budget, parameters=parameters, final=final)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    plot_loss(trainer.state.log_history, out / "loss.png")
    if not math.isfinite(timed.result.training_loss):
        raise RuntimeError(f"training loss is {timed.result.training_loss}; lower learning_rate")
    return report

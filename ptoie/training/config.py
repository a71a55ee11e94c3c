"""Training configuration: one YAML file -> one validated :class:`TrainConfig`.

Every field is documented; a wrong value raises :class:`ConfigError` naming the field and the fix.
:meth:`TrainConfig.training_arguments` is the explicit mapping to ``transformers.TrainingArguments``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

Method = Literal["lora", "fft"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Optimizer = Literal["auto", "adamw_torch", "paged_adamw_8bit"]
Scheduler = Literal["cosine", "linear", "constant_with_warmup"]
Device = Literal["auto", "cpu", "cuda"]


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the field and the fix."""


@dataclass(slots=True)
class TrainConfig:
    """What to train, on what, and how. Field names are the YAML keys."""

    # --- model -----------------------------------------------------------------------------------
    base_model: str
    """HF hub id, local model folder, a ``.gguf`` file, or ``embedded:smollm2`` (the SmolLM2-135M-
    Instruct Q4_1 GGUF the extractor uses by default; training on it makes the LoRA match the
    inference base exactly)."""
    method: Method = "lora"
    """``lora``: train a peft LoRA adapter; ``fft``: full fine-tuning of every weight."""
    lora_r: int = 16
    """LoRA rank (``lora`` only)."""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA input."""
    lora_target_modules: list[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    """Linear layers that get an adapter (Llama/Qwen2 names)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, ~30% slower."""
    init_adapter: str | None = None
    """Start the LoRA from this adapter instead of peft's initialisation (``lora`` only): a llama.cpp
    LoRA-adapter GGUF (e.g. ``models/ptoie-smollm2-135m-lora-f16.gguf``, read back by
    ``ptoie.training.export_adapter.hf_lora_pairs``) or a peft adapter folder; its rank must be
    ``lora_r`` and its scale ``lora_alpha / lora_r``. null: a fresh LoRA."""

    # --- data ------------------------------------------------------------------------------------
    train_file: str = "runs/data/transalign.jsonl"
    """JSONL written by ``ptoie-train prepare`` (training split)."""
    validation_file: str | None = "runs/data/transalign.val.jsonl"
    """Validation split of ``prepare`` (evaluated at the end and every ``eval_steps``); null: none."""
    max_length: int = 192
    """Examples longer than this (tokens) are dropped and counted in the report."""
    max_train_samples: int | None = None
    """Use only the first N training records (smoke runs); null: all."""
    repeat_multi_triple: int = 1
    """Each training record with two or more triples is used this many times per epoch (1: once).
    TransAlign gives few sentences several triples; repeating them shows the model more answers
    that go on after the first line."""

    # --- optimisation ----------------------------------------------------------------------------
    learning_rate: float = 3e-4
    """Peak learning rate."""
    lr_scheduler: Scheduler = "cosine"
    """Learning-rate schedule after warm-up."""
    warmup_steps: int = 20
    """Linear warm-up steps."""
    epochs: float = 1.0
    """Passes over the training data (ignored when ``max_steps`` is set)."""
    max_steps: int | None = None
    """Stop after this many optimiser steps; null: run ``epochs``."""
    max_minutes: float | None = None
    """Wall-clock budget: stop (and save) when it is spent, even mid-schedule; null: no budget."""
    per_device_batch_size: int = 8
    """Sequences per forward pass."""
    gradient_accumulation_steps: int = 1
    """Forward passes per optimiser step (effective batch = this × per_device_batch_size)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    optimizer: Optimizer = "auto"
    """``auto``: ``paged_adamw_8bit`` on CUDA with bitsandbytes, else ``adamw_torch``."""
    precision: Precision = "auto"
    """``auto``: bf16 on a CUDA GPU that supports it, else fp32 (CPU)."""
    device: Device = "auto"
    """``auto``: CUDA when available, else CPU."""
    seed: int = 0
    """Seed of data order and adapter initialisation."""

    # --- bookkeeping -----------------------------------------------------------------------------
    output_dir: str = "runs/train"
    """Checkpoints, final adapter/model, ``report.json`` and ``loss.png`` go here."""
    logging_steps: int = 5
    """Log the training loss every N steps."""
    save_steps: int = 50
    """Checkpoint every N steps (training resumes from the last one)."""
    eval_steps: int | None = None
    """Evaluate the validation loss every N steps; null: only at the end."""
    threads: int | None = None
    """CPU threads for torch; null: torch's default."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(TrainConfig)
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), hints[f.name])
        if self.method == "lora" and self.lora_r <= 0:
            raise ConfigError(f"lora_r must be a positive integer, got {self.lora_r}")
        if self.init_adapter is not None and self.method != "lora":
            raise ConfigError("init_adapter needs method: lora (it starts a LoRA from an adapter)")
        for name in ("max_length", "per_device_batch_size", "gradient_accumulation_steps",
                     "logging_steps", "save_steps", "repeat_multi_triple"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.learning_rate < 1:
            raise ConfigError(f"learning_rate must be in (0, 1), got {self.learning_rate}; "
                              "typical: 3e-4 for LoRA, 5e-5 for FFT")
        if self.max_steps is None and self.epochs <= 0:
            raise ConfigError("epochs must be > 0 when max_steps is null")

    @classmethod
    def from_yaml(cls, path: Path | str) -> TrainConfig:
        """Load and validate a YAML config; unknown keys are errors (typos must not pass silently)."""
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: top level must be a mapping of field: value")
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "config") -> TrainConfig:
        """Validate a plain mapping (same rules as :meth:`from_yaml`)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown field(s) {unknown}; valid fields: {sorted(known)}")
        if "base_model" not in raw:
            raise ConfigError(f"{source}: field 'base_model' is required "
                              "(HF id, local folder, .gguf file or 'embedded:smollm2')")
        try:
            return cls(**raw)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (for the report)."""
        return dataclasses.asdict(self)


def _check_type(name: str, value: Any, hint: Any) -> None:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{name} must be one of {list(args)}, got {value!r}")
        return
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return
        hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name} must be a list of strings, got {value!r}")
        return
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return
    if hint in (int, float, str, bool) and (not isinstance(value, hint) or
                                            (hint is int and isinstance(value, bool))):
        raise ConfigError(f"{name} must be {hint.__name__}, got {type(value).__name__} {value!r}")

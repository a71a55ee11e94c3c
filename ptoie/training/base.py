"""The base model of a training run: where its weights are, its config, tokenizer and prompt format.

A base is an HF hub id, a local model folder, a ``.gguf`` file or an ``embedded:`` name
(:data:`ptoie.extract.default_model.EMBEDDED_BASES`: ``embedded:smollm2``, ``embedded:gemma3-270m``). GGUF bases
load through transformers' ``gguf_file`` (de-quantised to float32), once: the result is cached as a
safetensors folder (:func:`dequantized_base`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from ptoie.extract.default_model import resolve_model_path
from ptoie.extract.prompt import ChatFormat, chat_format_for
from ptoie.resources import cache_dir

log = logging.getLogger("ptoie.train")


def resolve_base(base_model: str) -> tuple[str, dict[str, Any]]:
    """``(name_or_dir, from_pretrained kwargs)`` for ``base_model`` (GGUF files load via ``gguf_file``)."""
    if base_model.startswith("embedded:"):
        path = resolve_model_path(base_model)
        return str(path.parent), {"gguf_file": path.name}
    if base_model.endswith(".gguf"):
        path = Path(base_model)
        if not path.is_file():
            raise FileNotFoundError(f"base_model {base_model!r}: no such GGUF file")
        return str(path.resolve().parent), {"gguf_file": path.name}
    return base_model, {}


def dequantized_base(base_model: str) -> tuple[str, dict[str, Any]]:
    """Like :func:`resolve_base`, but a GGUF base is de-quantised once (transformers' ``gguf_file``
    loader, float32) and cached as a safetensors folder under ``<ptoie cache>/dequantized/``, keyed by
    the GGUF's name, size and mtime: later runs load it in seconds instead of a minute."""
    name, kwargs = resolve_base(base_model)
    if "gguf_file" not in kwargs:
        return name, kwargs
    gguf_path = Path(name) / kwargs["gguf_file"]
    folder = _dequantized_folder(gguf_path)
    if not (folder / "config.json").is_file():
        log.info("de-quantising %s once into %s", gguf_path, folder)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32, **kwargs)
        _clear_gguf_quantization(model)
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        tmp.rename(folder)
    return str(folder), {}


def _dequantized_folder(gguf_path: Path) -> Path:
    """Cache folder of a GGUF's de-quantised weights (a changed file gets a new folder)."""
    st = gguf_path.stat()
    return cache_dir() / "dequantized" / f"{gguf_path.stem}-{st.st_size}-{st.st_mtime_ns}"


def _clear_gguf_quantization(model: torch.nn.Module) -> None:
    """transformers de-quantises GGUF tensors to float32 on load but still flags the model as
    GGUF-quantised, which the Trainer refuses; the weights are plain tensors, so clear the flag."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def load_tokenizer(base_model: str) -> PreTrainedTokenizerBase:
    """Tokenizer of ``base_model`` (from the de-quantised cache when a GGUF base has one, else from
    the GGUF itself); the pad token falls back to the EOS token."""
    name, kwargs = resolve_base(base_model)
    if "gguf_file" in kwargs and (_dequantized_folder(Path(name) / kwargs["gguf_file"]) / "config.json").is_file():
        name, kwargs = dequantized_base(base_model)
    tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def chat_format_of(model_or_config: Any) -> ChatFormat:
    """The prompt format (:mod:`ptoie.extract.prompt`) of a transformers model or config."""
    config = getattr(model_or_config, "config", model_or_config)
    return chat_format_for(getattr(config, "model_type", None))


def load_base_config(base_model: str) -> Any:
    """transformers config of a base (HF id, folder, GGUF file, ``embedded:`` name)."""
    name, kwargs = resolve_base(base_model)
    return AutoConfig.from_pretrained(name, **kwargs)


def base_gguf_path(base_model: str) -> Path | None:
    """The GGUF file of a GGUF base (an ``embedded:`` name or ``*.gguf``), else ``None``."""
    name, kwargs = resolve_base(base_model)
    return Path(name) / kwargs["gguf_file"] if "gguf_file" in kwargs else None

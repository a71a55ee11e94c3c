"""A full model (an FFT run, or a peft LoRA merged into its base) -> a llama.cpp model GGUF.

Written with the ``gguf`` package following llama.cpp's ``convert_hf_to_gguf.py`` for the
architectures of :mod:`ptoie.training.gguf_layout`: matrices as ``F16`` or ``Q8_0``, vectors as
F32, the hyper-parameters and the tokenizer llama.cpp needs (copied from a GGUF base, or built
from a transformers BPE tokenizer).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import gguf
import numpy as np
import torch
from transformers import AutoTokenizer

from ptoie.training.gguf_layout import (ExportError, architecture_of, gguf_tensor_name, permute_qk,
                                        qk_heads, tensor_name_map, write_gguf)

log = logging.getLogger("ptoie.export")

ModelFileType = Literal["f16", "q8_0"]
"""``f16``: every matrix in float16 (lossless w.r.t. a float16/bfloat16 model); ``q8_0``: matrices in
llama.cpp's 8-bit block format (about half the size, near-lossless). Vectors stay float32."""

MODEL_FILE_TYPES: tuple[ModelFileType, ...] = ("f16", "q8_0")
_LLAMA_FILE_TYPE = {"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}


# --- hyper-parameters ---------------------------------------------------------------------------

def _head_dim(config: Any) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def _rope_theta(config: Any) -> float:
    """RoPE base frequency; only plain RoPE (no scaling) is exported."""
    params = getattr(config, "rope_parameters", None) or {}
    scaling = getattr(config, "rope_scaling", None) or {}
    rope_type = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
    if rope_type != "default":
        raise ExportError(f"rope type {rope_type!r} is not supported by the GGUF export (only plain RoPE)")
    theta = params.get("rope_theta", getattr(config, "rope_theta", None))
    if theta is None:
        raise ExportError("the model config has no rope_theta")
    return float(theta)


def _add_hyperparameters(writer: gguf.GGUFWriter, config: Any) -> None:
    head_dim = _head_dim(config)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    if head_dim * config.num_attention_heads != config.hidden_size:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)


# --- tokenizer ----------------------------------------------------------------------------------

# Pre-tokenizers of tokenizer.json -> llama.cpp's ``tokenizer.ggml.pre`` (same split regexes).
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_KNOWN_PRE_TOKENIZERS: dict[tuple, str] = {
    (("ByteLevel", True),): "gpt2",
    (("Digits", True), ("ByteLevel", True)): "smollm",
    (("Split", _QWEN2_SPLIT, "Isolated"), ("ByteLevel", False)): "qwen2",
    (("Split", _LLAMA3_SPLIT, "Isolated"), ("ByteLevel", False)): "llama-bpe",
}


def _pre_step_signature(step: Mapping[str, Any]) -> tuple:
    kind = step.get("type")
    if kind == "ByteLevel":
        if step.get("add_prefix_space"):
            return ("ByteLevel+prefix-space",)
        return ("ByteLevel", bool(step.get("use_regex", True)))
    if kind == "Digits":
        return ("Digits", bool(step.get("individual_digits")))
    if kind == "Split" and not step.get("invert"):
        return ("Split", (step.get("pattern") or {}).get("Regex"), step.get("behavior"))
    return (json.dumps(step, sort_keys=True),)


def detect_tokenizer_pre(pre_tokenizer: Mapping[str, Any] | None) -> str:
    """llama.cpp pre-tokenizer name (``tokenizer.ggml.pre``) for a tokenizer.json ``pre_tokenizer``.

    Raises :class:`ExportError` for a pre-tokenizer llama.cpp would split differently; pass the name
    explicitly (``tokenizer_pre`` / ``--tokenizer-pre``) when you know it."""
    if not pre_tokenizer:
        raise ExportError("tokenizer.json has no pre_tokenizer; pass tokenizer_pre explicitly")
    steps = pre_tokenizer["pretokenizers"] if pre_tokenizer.get("type") == "Sequence" else [pre_tokenizer]
    signature = tuple(_pre_step_signature(step) for step in steps)
    if signature not in _KNOWN_PRE_TOKENIZERS:
        raise ExportError(f"unknown pre-tokenizer {json.dumps(pre_tokenizer)[:300]}; known: "
                          f"{sorted(set(_KNOWN_PRE_TOKENIZERS.values()))}; pass tokenizer_pre "
                          "(--tokenizer-pre) with the llama.cpp name that splits text the same way")
    return _KNOWN_PRE_TOKENIZERS[signature]


def _hf_vocabulary(tokenizer: Any, vocab_size: int) -> tuple[list[str], list[int]]:
    """Tokens and llama.cpp token types in id order, padded with ``[PADn]`` up to the embedding rows."""
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    if max(by_id) >= vocab_size:
        raise ExportError(f"tokenizer has token id {max(by_id)} but the model has only {vocab_size} "
                          "embedding rows: tokenizer and model do not belong together")
    added = tokenizer.added_tokens_decoder
    tokens: list[str] = []
    types: list[int] = []
    for index in range(vocab_size):
        if index not in by_id:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif index in added:
            tokens.append(added[index].content)
            types.append(gguf.TokenType.CONTROL if added[index].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.NORMAL)
    return tokens, types


def add_hf_tokenizer(writer: gguf.GGUFWriter, source: str | Path, *, vocab_size: int,
                     tokenizer_pre: str | None = None) -> None:
    """Write the ``tokenizer.*`` metadata of a transformers BPE tokenizer (folder or hub id)."""
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)  # one layout (tokenizer.json + config) whatever the source
        spec = json.loads((Path(folder) / "tokenizer.json").read_text(encoding="utf-8"))
        special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=vocab_size)
    if spec.get("model", {}).get("type") != "BPE":
        raise ExportError(f"tokenizer of {source} is {spec.get('model', {}).get('type')}, "
                          "only byte-level BPE tokenizers (Llama 3/SmolLM2/Qwen2 style) are exported")
    tokens, types = _hf_vocabulary(tokenizer, vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(tokenizer_pre or detect_tokenizer_pre(spec.get("pre_tokenizer")))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special.add_to_gguf(writer, quiet=True)


def copy_gguf_tokenizer(writer: gguf.GGUFWriter, source: Path, *, vocab_size: int) -> None:
    """Copy every ``tokenizer.*`` key of another GGUF (the most faithful tokenizer for a GGUF base)."""
    reader = gguf.GGUFReader(source)
    fields = {name: f for name, f in reader.fields.items() if name.startswith("tokenizer.")}
    if "tokenizer.ggml.tokens" not in fields:
        raise ExportError(f"{source} has no tokenizer.ggml.tokens to copy")
    n_tokens = len(fields["tokenizer.ggml.tokens"].data)
    if n_tokens != vocab_size:
        raise ExportError(f"{source} has {n_tokens} tokens but the model has {vocab_size} embedding "
                          "rows: the run was not trained from this base")
    for name, f in fields.items():
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(name, f.contents(), gguf.GGUFValueType.ARRAY, sub_type=f.types[-1])
        else:
            writer.add_key_value(name, f.contents(), f.types[0])


def add_tokenizer(writer: gguf.GGUFWriter, source: str | Path, *, vocab_size: int,
                  tokenizer_pre: str | None = None) -> None:
    """Tokenizer metadata from a ``.gguf`` file (copied) or a transformers tokenizer (built)."""
    if str(source).endswith(".gguf"):
        copy_gguf_tokenizer(writer, Path(source), vocab_size=vocab_size)
    else:
        add_hf_tokenizer(writer, source, vocab_size=vocab_size, tokenizer_pre=tokenizer_pre)


def write_model_gguf(model: torch.nn.Module, path: Path | str, *, file_type: ModelFileType,
                     tokenizer_source: str | Path, tokenizer_pre: str | None = None,
                     name: str | None = None) -> Path:
    """Write a transformers Llama/Qwen2 causal LM as a llama.cpp model GGUF.

    Matrices are stored as ``file_type`` (``q8_0`` falls back to F16 for a matrix whose rows are not
    a multiple of 32), vectors (norms, biases) as F32. A tied output projection is not written:
    llama.cpp reuses ``token_embd`` as it does for SmolLM2 and Qwen2-0.5B."""
    config = model.config
    arch = architecture_of(config)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, arch.name)
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name or path.stem)
    _add_hyperparameters(writer, config)
    writer.add_file_type(_LLAMA_FILE_TYPE[file_type])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_tokenizer(writer, tokenizer_source, vocab_size=config.vocab_size, tokenizer_pre=tokenizer_pre)
    tensor_map = tensor_name_map(arch, config)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue
        data = tensor.detach().to(torch.float32).cpu().numpy()
        heads = qk_heads(hf_name, config)
        if arch.permute_qk and heads is not None:
            data = permute_qk(data, heads)
        _add_tensor(writer, gguf_tensor_name(tensor_map, hf_name), data, file_type)
    write_gguf(writer)
    return path


def _add_tensor(writer: gguf.GGUFWriter, name: str, data: np.ndarray, file_type: ModelFileType) -> None:
    """A vector as F32, a matrix as ``file_type`` (F16 when its rows are not Q8_0 blocks)."""
    if data.ndim == 1:
        writer.add_tensor(name, data)
    elif file_type == "q8_0":
        try:
            writer.add_tensor(name, gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0),
                              raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        except gguf.QuantError:
            log.warning("%s: rows of %d are not Q8_0 blocks; stored as F16", name, data.shape[-1])
            writer.add_tensor(name, data.astype(np.float16))
    else:
        writer.add_tensor(name, data.astype(np.float16))

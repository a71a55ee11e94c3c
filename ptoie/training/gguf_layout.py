"""How a transformers model maps onto llama.cpp's GGUF layout: architectures, tensor names and
the q/k row order, shared by the model and the adapter export.

llama.cpp's Llama graph applies RoPE to interleaved pairs, transformers' Llama to the two halves of
each head, so the converter permutes the rows of the Llama q/k projections (and of a LoRA's q/k
``B`` matrices, which produce those rows); Qwen2 and Gemma 3 use llama.cpp's NEOX RoPE and are not
permuted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gguf
import numpy as np


class ExportError(ValueError):
    """The run, its base or its tokenizer cannot be exported; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Architecture:
    """How one transformers ``model_type`` maps onto a llama.cpp architecture."""

    gguf_arch: gguf.MODEL_ARCH
    permute_qk: bool
    """Permute q/k rows from rotate-half to interleaved RoPE order (llama.cpp's LLAMA graph)."""

    @property
    def name(self) -> str:
        """``general.architecture`` value (``llama``, ``qwen2``)."""
        return gguf.MODEL_ARCH_NAMES[self.gguf_arch]


ARCHITECTURES: dict[str, Architecture] = {
    "llama": Architecture(gguf.MODEL_ARCH.LLAMA, permute_qk=True),
    "qwen2": Architecture(gguf.MODEL_ARCH.QWEN2, permute_qk=False),
    "gemma3_text": Architecture(gguf.MODEL_ARCH.GEMMA3, permute_qk=False),
}


def architecture_of(config: Any) -> Architecture:
    """The :class:`Architecture` of a transformers config, or a clear error for other model types."""
    model_type = getattr(config, "model_type", None)
    if model_type not in ARCHITECTURES:
        raise ExportError(f"model_type {model_type!r} is not supported by the GGUF export; "
                          f"supported: {sorted(ARCHITECTURES)} (Llama/SmolLM2, Qwen2, Gemma 3)")
    return ARCHITECTURES[model_type]


def tensor_name_map(arch: Architecture, config: Any) -> gguf.TensorNameMap:
    """transformers weight names -> llama.cpp tensor names for a model of ``config``."""
    return gguf.get_tensor_name_map(arch.gguf_arch, config.num_hidden_layers)


def gguf_tensor_name(tensor_map: gguf.TensorNameMap, hf_name: str) -> str:
    """The llama.cpp tensor name of a transformers weight (``blk.0.attn_q.weight`` ...)."""
    name = tensor_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if name is None:
        raise ExportError(f"no llama.cpp tensor for {hf_name!r}")
    return name


def permute_qk(rows: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute``: reorder the rows of each head from transformers'
    rotate-half layout to GGML's interleaved RoPE layout. Works on q/k weights, biases and LoRA ``B``."""
    if rows.shape[0] % (2 * n_head):
        raise ExportError(f"cannot permute {rows.shape[0]} rows into {n_head} heads of even size")
    return (rows.reshape(n_head, 2, rows.shape[0] // n_head // 2, *rows.shape[1:])
            .swapaxes(1, 2)
            .reshape(rows.shape))


def unpermute_qk(rows: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of :func:`permute_qk`: GGML's interleaved RoPE rows back to transformers' layout."""
    if rows.shape[0] % (2 * n_head):
        raise ExportError(f"cannot un-permute {rows.shape[0]} rows into {n_head} heads of even size")
    return (rows.reshape(n_head, rows.shape[0] // n_head // 2, 2, *rows.shape[1:])
            .swapaxes(1, 2)
            .reshape(rows.shape))


def qk_heads(hf_name: str, config: Any) -> int | None:
    """Number of heads whose rows ``hf_name`` holds when it is a q/k projection, else ``None``."""
    if ".self_attn.q_proj." in hf_name:
        return config.num_attention_heads
    if ".self_attn.k_proj." in hf_name:
        return config.num_key_value_heads
    return None


def write_gguf(writer: gguf.GGUFWriter) -> None:
    """Write header, metadata and tensors of ``writer`` to its file and close it."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=False)
    writer.close()

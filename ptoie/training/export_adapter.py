"""A peft LoRA adapter <-> a llama.cpp LoRA-adapter GGUF (``general.type=adapter``).

:func:`write_lora_adapter_gguf` writes the file llama.cpp applies at run time on top of the base
GGUF (through ``lora_path``), following llama.cpp's ``convert_lora_to_gguf.py``;
:func:`hf_lora_pairs` reads one back (with :func:`ptoie.extract.lora_merge.read_lora_adapter`)
as peft's matrices, to continue training from a shipped adapter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import gguf
import numpy as np
import torch
from peft import load_peft_weights

from ptoie.extract.lora_merge import read_lora_adapter
from ptoie.training.gguf_layout import (ExportError, architecture_of, gguf_tensor_name, permute_qk,
                                        qk_heads, tensor_name_map, unpermute_qk, write_gguf)

AdapterDType = Literal["f16", "f32"]
"""Storage type of the LoRA ``A``/``B`` matrices in the adapter GGUF."""

_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def read_peft_adapter(adapter_dir: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(adapter_config.json as a dict, weights)`` of a peft adapter folder (weights on the CPU)."""
    config_path = adapter_dir / "adapter_config.json"
    if not config_path.is_file():
        raise ExportError(f"{adapter_dir} has no adapter_config.json: not a peft adapter folder")
    if not any((adapter_dir / name).is_file()
               for name in ("adapter_model.safetensors", "adapter_model.bin")):
        raise ExportError(f"{adapter_dir} has no adapter_model.safetensors (or .bin)")
    adapter_config = json.loads(config_path.read_text(encoding="utf-8"))
    return adapter_config, load_peft_weights(str(adapter_dir), device="cpu")


def lora_alpha_for_llama_cpp(adapter_config: Mapping[str, Any]) -> float:
    """``adapter.lora.alpha`` giving llama.cpp's scale ``alpha / r`` the value peft uses.

    peft scales by ``alpha / r`` (``alpha / sqrt(r)`` with rsLoRA); per-module rank or alpha
    patterns, DoRA, LoRA biases and fully trained extra modules have no llama.cpp equivalent."""
    unsupported = {
        "use_dora": "DoRA", "rank_pattern": "per-module ranks", "alpha_pattern": "per-module alphas",
        "modules_to_save": "fully trained extra modules", "lora_bias": "LoRA biases",
    }
    for key, what in unsupported.items():
        if adapter_config.get(key):
            raise ExportError(f"adapter_config.json {key}={adapter_config[key]!r}: {what} cannot be "
                              "expressed as a llama.cpp LoRA adapter; export the merged model instead")
    if adapter_config.get("peft_type", "LORA") != "LORA":
        raise ExportError(f"adapter_config.json peft_type={adapter_config['peft_type']!r}, expected LORA")
    r, alpha = adapter_config["r"], float(adapter_config["lora_alpha"])
    return alpha * math.sqrt(r) if adapter_config.get("use_rslora") else alpha


def _lora_tensors(weights: Mapping[str, torch.Tensor]) -> Iterable[tuple[str, str, torch.Tensor]]:
    """``(hf weight name, "lora_a" | "lora_b", tensor)`` of a peft adapter state dict."""
    for key, tensor in weights.items():
        for marker, part in ((".lora_A.weight", "lora_a"), (".lora_B.weight", "lora_b")):
            if key.endswith(marker):
                module = key[: -len(marker)].removeprefix("base_model.model.")
                if module.rsplit(".", 1)[-1] not in _LORA_TARGETS:
                    raise ExportError(f"adapter tensor {key!r}: only LoRA on {list(_LORA_TARGETS)} is "
                                      "exported as a llama.cpp adapter; export the merged model instead")
                yield module + ".weight", part, tensor
                break
        else:
            raise ExportError(f"unexpected adapter tensor {key!r} (not a lora_A/lora_B weight)")


def write_lora_adapter_gguf(adapter_dir: Path | str, path: Path | str, *, base_config: Any,
                            dtype: AdapterDType = "f16", name: str | None = None) -> Path:
    """Write a peft LoRA adapter folder as a llama.cpp LoRA-adapter GGUF for a base with ``base_config``.

    Tensors are ``blk.N.<tensor>.weight.lora_a`` (peft ``A``, shape r x in) and ``.lora_b`` (peft ``B``,
    out x r); for Llama the q/k ``B`` rows are permuted like the base q/k weights."""
    adapter_dir, path = Path(adapter_dir), Path(path)
    adapter_config, weights = read_peft_adapter(adapter_dir)
    arch = architecture_of(base_config)
    alpha = lora_alpha_for_llama_cpp(adapter_config)
    tensor_map = tensor_name_map(arch, base_config)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, arch.name)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_name(name or path.stem)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    storage = np.float16 if dtype == "f16" else np.float32
    n_written = 0
    for hf_name, part, tensor in sorted(_lora_tensors(weights)):
        data = tensor.detach().to(torch.float32).cpu().numpy()
        heads = qk_heads(hf_name, base_config)
        if part == "lora_b" and arch.permute_qk and heads is not None:
            data = permute_qk(data, heads)
        writer.add_tensor(f"{gguf_tensor_name(tensor_map, hf_name)}.{part}", data.astype(storage))
        n_written += 1
    if not n_written:
        raise ExportError(f"{adapter_dir}: the adapter has no LoRA tensors")
    write_gguf(writer)
    return path


def hf_lora_pairs(path: Path | str, *, base_config: Any,
                  hf_names: Iterable[str]) -> tuple[float, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The LoRA of a llama.cpp LoRA-adapter GGUF (as :func:`write_lora_adapter_gguf` writes it)
    by transformers weight name.

    ``hf_names`` are the transformers weight names of the adapted layers
    (``model.layers.0.self_attn.q_proj.weight`` ...). Returns ``(alpha, {hf_name: (A, B)})`` with
    peft's shapes (``A``: r x in, ``B``: out x r) in float32, the q/k ``B`` rows of a Llama
    un-permuted. Every adapted layer must be in the file and every LoRA pair of the file must be
    used: a file for another layer set is refused, never half-loaded."""
    path = Path(path)
    architecture, alpha, pairs = read_lora_adapter(path)
    arch = architecture_of(base_config)
    if architecture != arch.name:
        raise ExportError(f"{path}: adapter for {architecture!r}, base is {arch.name!r}")
    tensor_map = tensor_name_map(arch, base_config)
    by_hf_name: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for hf_name in hf_names:
        stem = gguf_tensor_name(tensor_map, hf_name)
        pair = pairs.pop(stem, None)
        if pair is None:
            raise ExportError(f"{path}: no {stem}.lora_a/.lora_b for {hf_name!r}")
        heads = qk_heads(hf_name, base_config)
        b = unpermute_qk(pair.b, heads) if arch.permute_qk and heads is not None else pair.b
        by_hf_name[hf_name] = (pair.a, b)
    if pairs:
        raise ExportError(f"{path}: {len(pairs)} LoRA pair(s) for layers the model does not adapt, "
                          f"e.g. {min(pairs)!r}")
    return alpha, by_hf_name

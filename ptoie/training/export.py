"""Trained runs -> GGUF files that llama.cpp (and so the extractor) loads.

Two products, both written with the ``gguf`` package following the conventions of llama.cpp's
``convert_hf_to_gguf.py`` / ``convert_lora_to_gguf.py`` for the two architectures ptoie targets,
Llama (SmolLM2, the embedded base) and Qwen2 (the paper's base):

* :func:`write_model_gguf` — a full model (an FFT run, or a peft LoRA merged into its base) as a
  GGUF ``F16`` or ``Q8_0`` file with the hyper-parameters and tokenizer llama.cpp needs;
* :func:`write_lora_adapter_gguf` — a peft LoRA adapter as a llama.cpp LoRA-adapter GGUF
  (``general.type=adapter``), applied at run time on top of the base GGUF through ``lora_path``.

:func:`export_run` is what ``ptoie-train export`` calls: it finds the base of a run, picks the
tokenizer source and writes the requested files.

llama.cpp's Llama graph applies RoPE to interleaved pairs, transformers' Llama to the two halves of
each head, so the converter permutes the rows of the Llama q/k projections (and of a LoRA's q/k
``B`` matrices, which produce those rows); Qwen2 uses llama.cpp's NEOX RoPE and is not permuted.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gguf
import numpy as np
import torch

from ptoie.training.base import base_gguf_path, load_base_config

log = logging.getLogger("ptoie.export")

ModelFileType = Literal["f16", "q8_0"]
"""``f16``: every matrix in float16 (lossless w.r.t. a float16/bfloat16 model); ``q8_0``: matrices in
llama.cpp's 8-bit block format (about half the size, near-lossless). Vectors stay float32."""
AdapterDType = Literal["f16", "f32"]
"""Storage type of the LoRA ``A``/``B`` matrices in the adapter GGUF."""

MODEL_FILE_TYPES: tuple[ModelFileType, ...] = ("f16", "q8_0")
_LLAMA_FILE_TYPE = {"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}
_GENERIC_RUN_FOLDERS = ("final", "adapter", "model")
"""Run folders named after their role: exported files take the name of the folder above them."""
_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


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


# --- Q/K permutation ----------------------------------------------------------------------------

def permute_qk(rows: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute``: reorder the rows of each head from transformers'
    rotate-half layout to GGML's interleaved RoPE layout. Works on q/k weights, biases and LoRA ``B``."""
    if rows.shape[0] % (2 * n_head):
        raise ExportError(f"cannot permute {rows.shape[0]} rows into {n_head} heads of even size")
    return (rows.reshape(n_head, 2, rows.shape[0] // n_head // 2, *rows.shape[1:])
            .swapaxes(1, 2)
            .reshape(rows.shape))


def _qk_heads(hf_name: str, config: Any) -> int | None:
    """Number of heads whose rows ``hf_name`` holds when it is a q/k projection, else ``None``."""
    if ".self_attn.q_proj." in hf_name:
        return config.num_attention_heads
    if ".self_attn.k_proj." in hf_name:
        return config.num_key_value_heads
    return None


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
    from transformers import AutoTokenizer
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


# --- merged model -------------------------------------------------------------------------------

def _gguf_tensor_name(tensor_map: gguf.TensorNameMap, hf_name: str) -> str:
    name = tensor_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if name is None:
        raise ExportError(f"no llama.cpp tensor for {hf_name!r}")
    return name


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
    tensor_map = gguf.get_tensor_name_map(arch.gguf_arch, config.num_hidden_layers)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue
        data = tensor.detach().to(torch.float32).cpu().numpy()
        heads = _qk_heads(hf_name, config)
        if arch.permute_qk and heads is not None:
            data = permute_qk(data, heads)
        gguf_name = _gguf_tensor_name(tensor_map, hf_name)
        if data.ndim == 1:
            writer.add_tensor(gguf_name, data)
        elif file_type == "q8_0":
            try:
                writer.add_tensor(gguf_name, gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0),
                                  raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            except gguf.QuantError:
                log.warning("%s: rows of %d are not Q8_0 blocks; stored as F16", gguf_name, data.shape[-1])
                writer.add_tensor(gguf_name, data.astype(np.float16))
        else:
            writer.add_tensor(gguf_name, data.astype(np.float16))
    _write(writer)
    return path


def _write(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=False)
    writer.close()


# --- LoRA adapter -------------------------------------------------------------------------------

def _read_adapter(adapter_dir: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    config_path = adapter_dir / "adapter_config.json"
    if not config_path.is_file():
        raise ExportError(f"{adapter_dir} has no adapter_config.json: not a peft adapter folder")
    adapter_config = json.loads(config_path.read_text(encoding="utf-8"))
    weights_path = adapter_dir / "adapter_model.safetensors"
    if weights_path.is_file():
        from safetensors.torch import load_file
        weights = load_file(str(weights_path))
    elif (adapter_dir / "adapter_model.bin").is_file():
        weights = torch.load(adapter_dir / "adapter_model.bin", map_location="cpu", weights_only=True)
    else:
        raise ExportError(f"{adapter_dir} has no adapter_model.safetensors (or .bin)")
    return adapter_config, weights


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
    adapter_config, weights = _read_adapter(adapter_dir)
    arch = architecture_of(base_config)
    alpha = lora_alpha_for_llama_cpp(adapter_config)
    tensor_map = gguf.get_tensor_name_map(arch.gguf_arch, base_config.num_hidden_layers)
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
        heads = _qk_heads(hf_name, base_config)
        if part == "lora_b" and arch.permute_qk and heads is not None:
            data = permute_qk(data, heads)
        writer.add_tensor(f"{_gguf_tensor_name(tensor_map, hf_name)}.{part}", data.astype(storage))
        n_written += 1
    if not n_written:
        raise ExportError(f"{adapter_dir}: the adapter has no LoRA tensors")
    _write(writer)
    return path


def unpermute_qk(rows: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of :func:`permute_qk`: GGML's interleaved RoPE rows back to transformers' layout."""
    if rows.shape[0] % (2 * n_head):
        raise ExportError(f"cannot un-permute {rows.shape[0]} rows into {n_head} heads of even size")
    return (rows.reshape(n_head, rows.shape[0] // n_head // 2, 2, *rows.shape[1:])
            .swapaxes(1, 2)
            .reshape(rows.shape))


def read_lora_adapter_gguf(path: Path | str, *, base_config: Any,
                           hf_names: Iterable[str]) -> tuple[float, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Read back a llama.cpp LoRA-adapter GGUF (as :func:`write_lora_adapter_gguf` writes it).

    ``hf_names`` are the transformers weight names of the adapted layers
    (``model.layers.0.self_attn.q_proj.weight`` ...). Returns ``(alpha, {hf_name: (A, B)})`` with
    peft's shapes (``A``: r x in, ``B``: out x r) in float32, the q/k ``B`` rows of a Llama
    un-permuted. Every adapted layer must be in the file and every LoRA tensor of the file must be
    used: a file for another layer set is refused, never half-loaded."""
    path = Path(path)
    reader = gguf.GGUFReader(path)

    def field(key: str) -> Any:
        value = reader.fields.get(key)
        return None if value is None else value.contents()

    if field("general.type") != "adapter" or field(gguf.Keys.Adapter.TYPE) != "lora":
        raise ExportError(f"{path}: not a llama.cpp LoRA-adapter GGUF (general.type="
                          f"{field('general.type')!r}, adapter.type={field(gguf.Keys.Adapter.TYPE)!r})")
    arch = architecture_of(base_config)
    if field("general.architecture") != arch.name:
        raise ExportError(f"{path}: adapter for {field('general.architecture')!r}, base is {arch.name!r}")
    alpha = float(field(gguf.Keys.Adapter.LORA_ALPHA))
    tensors = {t.name: np.array(t.data, dtype=np.float32) for t in reader.tensors}
    tensor_map = gguf.get_tensor_name_map(arch.gguf_arch, base_config.num_hidden_layers)
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    used: set[str] = set()
    for hf_name in hf_names:
        stem = _gguf_tensor_name(tensor_map, hf_name)
        names = (f"{stem}.lora_a", f"{stem}.lora_b")
        missing = [n for n in names if n not in tensors]
        if missing:
            raise ExportError(f"{path}: no {missing[0]} for {hf_name!r}")
        a, b = (tensors[n] for n in names)
        heads = _qk_heads(hf_name, base_config)
        if arch.permute_qk and heads is not None:
            b = unpermute_qk(b, heads)
        pairs[hf_name] = (a, b)
        used.update(names)
    unused = sorted(set(tensors) - used)
    if unused:
        raise ExportError(f"{path}: {len(unused)} LoRA tensor(s) for layers the model does not adapt, "
                          f"e.g. {unused[0]!r}")
    return alpha, pairs


# --- runs ---------------------------------------------------------------------------------------

def run_kind(run_dir: Path) -> Literal["adapter", "model"]:
    """``adapter`` for a peft LoRA folder, ``model`` for a full (FFT) model folder."""
    if (run_dir / "adapter_config.json").is_file():
        return "adapter"
    if (run_dir / "config.json").is_file():
        return "model"
    raise ExportError(f"{run_dir} is neither a peft adapter (adapter_config.json) nor a model folder "
                      "(config.json); pass the run's final/ folder")


def run_base_model(run_dir: Path, base_model: str | None) -> str | None:
    """The base a run was trained from: ``base_model`` if given, else the run's ``report.json``."""
    if base_model:
        return base_model
    report = run_dir.parent / "report.json"
    if not report.is_file():
        return None
    recorded = json.loads(report.read_text(encoding="utf-8"))["config"]["base_model"]
    if recorded.endswith(".gguf") and not Path(recorded).is_file():
        raise ExportError(f"{report} names base_model {recorded!r}, which is not on this machine "
                          "(trained elsewhere?): pass --base (e.g. embedded:smollm2)")
    return recorded


@dataclass(frozen=True, slots=True)
class ExportedFile:
    """One file written by :func:`export_run`."""

    kind: Literal["adapter", "model"]
    file_type: str
    path: Path

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (with the size in MB)."""
        return {"kind": self.kind, "file_type": self.file_type, "path": str(self.path),
                "size_mb": round(self.path.stat().st_size / 2**20, 2)}


def export_run(run_dir: Path | str, *, out_dir: Path | str,
               base_model: str | None = None,
               adapter: bool | None = None, adapter_dtype: AdapterDType = "f16",
               merged: Iterable[ModelFileType] | None = None,
               tokenizer_pre: str | None = None, name: str | None = None) -> list[ExportedFile]:
    """Export a training run's ``final/`` folder to GGUF files under ``out_dir``.

    Defaults: a LoRA run gives its adapter GGUF (what ships: a few MB on top of the base GGUF); an
    FFT run gives the merged model as F16 and Q8_0. ``merged`` asks for merged files explicitly (a
    LoRA run is merged into its base first). ``base_model`` defaults to the run's ``report.json``;
    the tokenizer is copied from the base GGUF when the base is one, else built from the run's
    tokenizer files."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    kind = run_kind(run_dir)
    base = run_base_model(run_dir, base_model)
    if kind == "adapter" and base is None:
        raise ExportError(f"{run_dir} is a LoRA adapter and {run_dir.parent / 'report.json'} is missing: "
                          "pass the base it was trained on (--base embedded:smollm2 | HF id | folder | .gguf)")
    if adapter is None:
        adapter = kind == "adapter"
    if merged is None:
        merged = () if kind == "adapter" else MODEL_FILE_TYPES
    merged = tuple(merged)
    for file_type in merged:
        if file_type not in MODEL_FILE_TYPES:
            raise ExportError(f"merged file type {file_type!r} unknown; choose from {list(MODEL_FILE_TYPES)}")
    if adapter and kind != "adapter":
        raise ExportError(f"{run_dir} is a full fine-tune: there is no adapter to export (use merged)")
    if not adapter and not merged:
        raise ExportError("nothing to export: ask for the adapter and/or merged file types")
    name = name or (run_dir.parent.name if run_dir.name in _GENERIC_RUN_FOLDERS else run_dir.name)
    written: list[ExportedFile] = []
    if adapter:
        path = out_dir / f"{name}-lora-{adapter_dtype}.gguf"
        write_lora_adapter_gguf(run_dir, path, base_config=load_base_config(base), dtype=adapter_dtype,
                                name=name)
        written.append(ExportedFile("adapter", adapter_dtype, path))
        log.info("adapter -> %s", path)
    if merged:
        from ptoie.training.generate_hf import load_run
        model = load_run(run_dir, base_model=base or str(run_dir), device="cpu")
        base_gguf = base_gguf_path(base) if base else None
        if base_gguf is not None:
            tokenizer_source: str | Path = base_gguf
        elif (run_dir / "tokenizer.json").is_file() or (run_dir / "tokenizer_config.json").is_file():
            tokenizer_source = run_dir
        elif base is not None:
            tokenizer_source = base
        else:
            raise ExportError(f"{run_dir} has no tokenizer files and no base is known: pass --base")
        for file_type in merged:
            path = out_dir / f"{name}-{file_type}.gguf"
            write_model_gguf(model, path, file_type=file_type, tokenizer_source=tokenizer_source,
                             tokenizer_pre=tokenizer_pre, name=name)
            written.append(ExportedFile("model", file_type, path))
            log.info("merged %s -> %s", file_type, path)
    return written

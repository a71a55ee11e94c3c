"""Merge a llama.cpp LoRA adapter into its base GGUF once, and cache the merged model.

llama.cpp applies an adapter at run time as extra matrix products on every LoRA'd projection. A
merged model has none: on SmolLM2's Q4_1 base, which llama.cpp's CPU backend multiplies slower than
Q4_0 (it repacks Q4_0, not Q4_1, into its interleaved AVX2/AVX-512 GEMM layout), the merged Q4_0
model runs about twice as fast at the same PUD-100 F1 (docs/throughput.md has the measurements);
a k-quant base such as Gemma 3 270M's Q4_K_M is merged as Q8_0 (:func:`merge_quant_for`). The
merged file (~90 MB for SmolLM2) is not shipped; it is built from the base and the adapter at
first use:

* every base tensor with a LoRA pair is dequantized (``gguf.quants``), gets
  ``scale * B @ A`` added (``scale = alpha / rank``, as llama.cpp applies adapters) and is
  requantized to the target type with ``gguf.quants`` (byte-identical to llama.cpp's reference
  quantizer for Q4_0/Q8_0);
* every other tensor (token embeddings, norms) is copied byte for byte, and so is every metadata
  key, tokenizer and chat template included; only ``general.file_type`` is set to the new type;
* the result is written with ``gguf.GGUFWriter`` into a cache file whose name holds a hash of the
  base file, the adapter file, the target type and :data:`MERGE_VERSION`, so a changed input
  gives a new file and a finished file is never rewritten (written to a temporary name first,
  then renamed).

Note: requantizing into the base's own format (Q4_1 -> Q4_1) is NOT offered: each merged block
stays on the base's quantization grid, so a delta smaller than half a quantization step rounds
back to the base weight and the fine-tune is mostly erased (measured: F1 collapses).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ptoie.resources import cache_dir as ptoie_cache_dir

MergedQuant = Literal["q4_0", "q8_0", "f16"]
"""Storage of the merged (LoRA'd) matrices: ``q4_0`` (fastest on CPU), ``q8_0``, ``f16``."""
MERGED_QUANTS: tuple[MergedQuant, ...] = ("q4_0", "q8_0", "f16")


def merge_quant_for(base: str | os.PathLike[str]) -> MergedQuant:
    """The merged format that keeps a base's adapter best: ``q8_0`` for a base in a k-quant
    (``Q4_K_M`` … , e.g. Gemma 3 270M), ``q4_0`` otherwise (e.g. SmolLM2's ``Q4_1``).

    Requantizing a k-quant base's matrices into Q4_0 adds a second, coarser rounding: on the
    Gemma adapter it cost 0.035 validation F1 against Q8_0 (docs/training.md); the legacy Q4_1 of
    SmolLM2 loses nothing measurable and decodes faster as Q4_0 (docs/throughput.md)."""
    gguf = _gguf()
    reader = gguf.GGUFReader(Path(base))
    file_type = _field(reader, "general.file_type")
    try:
        name = gguf.LlamaFileType(int(file_type)).name if file_type is not None else ""
    except ValueError:
        name = ""
    return "q8_0" if "_K" in name else "q4_0"   # MOSTLY_Q4_K_M, MOSTLY_Q6_K, ...


MERGE_VERSION = 1
"""Part of the cache key: bump when :func:`merge_lora` writes different bytes for the same inputs."""

class MergeError(ValueError):
    """The adapter does not fit the base (names, shapes, architecture) or is not a LoRA GGUF."""


def _gguf():
    import gguf  # imported late: only merging needs it
    return gguf


def _qtype(quant: MergedQuant):
    gguf = _gguf()
    return {"q4_0": gguf.GGMLQuantizationType.Q4_0, "q8_0": gguf.GGMLQuantizationType.Q8_0,
            "f16": gguf.GGMLQuantizationType.F16}[quant]


def _file_type(quant: MergedQuant) -> int:
    gguf = _gguf()
    return int({"q4_0": gguf.LlamaFileType.MOSTLY_Q4_0, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
                "f16": gguf.LlamaFileType.MOSTLY_F16}[quant])



def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def merged_gguf(base: str | os.PathLike[str], adapter: str | os.PathLike[str], *,
                quant: MergedQuant = "q4_0", cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The merged model of ``base`` + ``adapter`` as ``quant``, built on the first call (a few
    seconds) and read from the cache afterwards."""
    if quant not in MERGED_QUANTS:
        raise ValueError(f"quant must be one of {MERGED_QUANTS}, got {quant!r}")
    base, adapter = Path(base), Path(adapter)
    key = hashlib.sha256(f"{MERGE_VERSION}:{quant}:{file_sha256(base)}:{file_sha256(adapter)}"
                         .encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else ptoie_cache_dir() / "merged"
    out = folder / f"{base.stem}+{adapter.stem}-{quant}-{key}.gguf"
    if out.is_file():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        merge_lora(base, adapter, tmp, quant=quant)
        os.replace(tmp, out)  # atomic: a concurrent reader sees no file or the whole file
    finally:
        tmp.unlink(missing_ok=True)
    return out


@dataclass(frozen=True, slots=True)
class LoraPair:
    a: np.ndarray   # (rank, n_in), peft's A
    b: np.ndarray   # (n_out, rank), peft's B

    @property
    def rank(self) -> int:
        return self.a.shape[0]


def _field(reader, name: str):
    field = reader.fields.get(name)
    return None if field is None else field.contents()


def read_lora_adapter(adapter: Path) -> tuple[str, float, dict[str, LoraPair]]:
    """``(architecture, alpha, {base tensor name: LoraPair})`` of a llama.cpp LoRA-adapter GGUF."""
    gguf = _gguf()
    reader = gguf.GGUFReader(adapter)
    if _field(reader, "general.type") != "adapter" or _field(reader, "adapter.type") != "lora":
        raise MergeError(f"{adapter} is not a llama.cpp LoRA adapter GGUF "
                         "(general.type=adapter, adapter.type=lora expected)")
    alpha = float(_field(reader, "adapter.lora.alpha") or 0.0)
    parts: dict[str, dict[str, np.ndarray]] = {}
    for tensor in reader.tensors:
        name, dot, part = tensor.name.rpartition(".")
        if not dot or part not in ("lora_a", "lora_b"):
            raise MergeError(f"{adapter}: tensor {tensor.name!r} is not a .lora_a/.lora_b tensor")
        data = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        parts.setdefault(name, {})[part] = data.reshape(tuple(int(n) for n in reversed(tensor.shape)))
    pairs = {}
    for name, p in parts.items():
        if set(p) != {"lora_a", "lora_b"}:
            raise MergeError(f"{adapter}: {name} has only {sorted(p)}, a LoRA needs lora_a and lora_b")
        pair = LoraPair(a=p["lora_a"], b=p["lora_b"])
        if pair.b.shape[1] != pair.rank:
            raise MergeError(f"{adapter}: {name} lora_a is {pair.a.shape}, lora_b {pair.b.shape}: ranks differ")
        pairs[name] = pair
    return str(_field(reader, "general.architecture")), alpha, pairs


def merge_lora(base: Path, adapter: Path, out: Path, *, quant: MergedQuant = "q4_0",
               scale: float = 1.0) -> Path:
    """Write ``base`` with ``adapter`` merged (``W + scale * alpha / rank * B @ A`` on each LoRA'd
    tensor, stored as ``quant``) to ``out``; all other tensors and all metadata copied exactly."""
    gguf = _gguf()
    base, adapter, out = Path(base), Path(adapter), Path(out)
    reader = gguf.GGUFReader(base)
    arch = _field(reader, "general.architecture")
    adapter_arch, alpha, pairs = read_lora_adapter(adapter)
    if adapter_arch != arch:
        raise MergeError(f"adapter {adapter} is for architecture {adapter_arch!r}, base {base} is {arch!r}")
    missing = sorted(set(pairs) - {t.name for t in reader.tensors})
    if missing:
        raise MergeError(f"adapter {adapter} has tensors the base {base} lacks: {missing[:5]}")

    qtype = _qtype(quant)
    writer = gguf.GGUFWriter(out, arch, endianess=reader.endianess)
    alignment = _field(reader, "general.alignment")
    if alignment is not None:
        writer.data_alignment = int(alignment)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in ("general.architecture", "general.alignment"):
            continue  # written by GGUFWriter itself
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        value = _file_type(quant) if field.name == "general.file_type" else field.contents()
        writer.add_key_value(field.name, value, value_type, sub_type=sub_type)
    if "general.file_type" not in reader.fields:
        writer.add_file_type(_file_type(quant))

    for tensor in reader.tensors:
        shape = tuple(int(n) for n in reversed(tensor.shape))   # numpy order: (n_out, n_in)
        pair = pairs.get(tensor.name)
        if pair is None:
            writer.add_tensor(tensor.name, tensor.data, raw_shape=tensor.data.shape,
                              raw_dtype=tensor.tensor_type)
            continue
        if (pair.b.shape[0], pair.a.shape[1]) != shape:
            raise MergeError(f"{tensor.name}: base is {shape}, LoRA B@A is "
                             f"{(pair.b.shape[0], pair.a.shape[1])}")
        factor = scale * alpha / pair.rank if alpha else scale   # llama.cpp's adapter scaling
        weight = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(shape)
        weight = weight.astype(np.float32) + np.float32(factor) * (pair.b @ pair.a)
        if quant == "f16":
            writer.add_tensor(tensor.name, weight.astype(np.float16))
        else:
            writer.add_tensor(tensor.name, gguf.quants.quantize(weight, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=False)
    writer.close()
    return out

"""Merging a llama.cpp LoRA adapter into its base GGUF (ptoie.extract.lora_merge): tiny hand-built GGUFs, plus
one run on the real shipped model."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from ptoie.extract.lora_merge import MergeError, merge_lora, merged_gguf, read_lora_adapter

Q = gguf.GGMLQuantizationType
N_EMBD, N_FF, RANK, ALPHA = 64, 96, 4, 8.0
LORA_TENSORS = {"blk.0.attn_q.weight": (N_EMBD, N_EMBD), "blk.0.ffn_up.weight": (N_FF, N_EMBD)}


def _weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0, 0.05, shape).astype(np.float32) for name, shape in LORA_TENSORS.items()}


def write_base(path, seed: int = 0):
    """A 1-block Llama-shaped GGUF: Q8_0 embeddings, an F32 norm, two Q4_1 matrices, tokenizer keys."""
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("tiny")
    writer.add_block_count(1)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_1)
    writer.add_float32("llama.rope.freq_base", 100000.0)
    writer.add_bool("tokenizer.ggml.add_bos_token", False)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["<|im_start|>", "a", "b", "Ġc", "ção"])
    writer.add_token_types([3, 1, 1, 1, 1])
    writer.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    rng = np.random.default_rng(seed + 100)
    embd = rng.normal(0, 1, (8, N_EMBD)).astype(np.float32)
    writer.add_tensor("token_embd.weight", gguf.quants.quantize(embd, Q.Q8_0), raw_dtype=Q.Q8_0)
    writer.add_tensor("blk.0.attn_norm.weight", rng.normal(1, 0.1, N_EMBD).astype(np.float32))
    for name, weight in _weights(seed).items():
        writer.add_tensor(name, gguf.quants.quantize(weight, Q.Q4_1), raw_dtype=Q.Q4_1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def lora_pairs(seed: int = 1) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {name: (rng.normal(0, 0.2, (RANK, n_in)).astype(np.float16),
                   rng.normal(0, 0.2, (n_out, RANK)).astype(np.float16))
            for name, (n_out, n_in) in LORA_TENSORS.items()}


def write_adapter(path, pairs=None, *, arch: str = "llama", drop_b: bool = False, extra: str | None = None):
    writer = gguf.GGUFWriter(path, arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, ALPHA)
    for name, (a, b) in (pairs or lora_pairs()).items():
        writer.add_tensor(f"{name}.lora_a", a)
        if not drop_b:
            writer.add_tensor(f"{name}.lora_b", b)
    if extra:
        writer.add_tensor(f"{extra}.lora_a", np.zeros((RANK, N_EMBD), np.float16))
        writer.add_tensor(f"{extra}.lora_b", np.zeros((N_EMBD, RANK), np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def tensors(path) -> dict[str, gguf.ReaderTensor]:
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def dequantized(tensor: gguf.ReaderTensor) -> np.ndarray:
    return gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(
        tuple(int(n) for n in reversed(tensor.shape)))


@pytest.fixture
def files(tmp_path):
    return write_base(tmp_path / "base.gguf"), write_adapter(tmp_path / "adapter.gguf")


def test_lora_delta_is_added_with_llama_cpp_scaling(files, tmp_path):
    base, adapter = files
    out = merge_lora(base, adapter, tmp_path / "merged-f16.gguf", quant="f16")
    merged, original = tensors(out), tensors(base)
    for name, (a, b) in lora_pairs().items():
        expected = dequantized(original[name]) + ALPHA / RANK * (b.astype(np.float32) @ a.astype(np.float32))
        got = dequantized(merged[name])
        assert merged[name].tensor_type == Q.F16
        np.testing.assert_allclose(got, expected, atol=2e-3)       # f16 storage rounding only
        assert np.abs(got - dequantized(original[name])).max() > 0.05  # the delta is really there


def test_q4_0_merge_stays_within_one_quantization_step(files, tmp_path):
    base, adapter = files
    merged = tensors(merge_lora(base, adapter, tmp_path / "merged-q4_0.gguf", quant="q4_0"))
    full = tensors(merge_lora(base, adapter, tmp_path / "merged-f16.gguf", quant="f16"))
    for name in LORA_TENSORS:
        assert merged[name].tensor_type == Q.Q4_0
        exact = dequantized(full[name]).astype(np.float32)
        step = np.abs(exact.reshape(-1, 32)).max(axis=1) / 8   # Q4_0 block scale (levels -8..7)
        error = np.abs(dequantized(merged[name]) - exact).reshape(-1, 32).max(axis=1)
        assert (error <= step + 1e-4).all()                    # rounding, or the clipped +8 level


def test_metadata_and_untouched_tensors_are_copied_exactly(files, tmp_path):
    base, adapter = files
    out = merge_lora(base, adapter, tmp_path / "merged.gguf", quant="q4_0")
    before, after = gguf.GGUFReader(base), gguf.GGUFReader(out)
    names = {n for n in before.fields if not n.startswith("GGUF.")}
    assert names == {n for n in after.fields if not n.startswith("GGUF.")}
    for name in names - {"general.file_type"}:
        assert after.fields[name].contents() == before.fields[name].contents(), name
        assert after.fields[name].types == before.fields[name].types, name
    assert after.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q4_0
    old, new = tensors(base), tensors(out)
    assert list(old) == list(new)  # same tensors, same order
    for name in ("token_embd.weight", "blk.0.attn_norm.weight"):
        assert new[name].tensor_type == old[name].tensor_type
        assert new[name].data.tobytes() == old[name].data.tobytes()


def test_cache_is_keyed_by_inputs_and_reused(files, tmp_path):
    base, adapter = files
    cache = tmp_path / "cache"
    first = merged_gguf(base, adapter, quant="q4_0", cache_dir=cache)
    stamp = first.stat().st_mtime_ns
    assert merged_gguf(base, adapter, quant="q4_0", cache_dir=cache) == first
    assert first.stat().st_mtime_ns == stamp                  # reused, not rewritten
    assert merged_gguf(base, adapter, quant="q8_0", cache_dir=cache) != first
    other = write_adapter(tmp_path / "adapter.gguf", lora_pairs(seed=7))  # same name, new content
    assert merged_gguf(base, other, quant="q4_0", cache_dir=cache) != first
    assert sorted(p.name.startswith(".") for p in cache.iterdir()) == [False, False, False]  # no temp left


def test_adapter_errors_are_clear(files, tmp_path):
    base, _ = files
    with pytest.raises(MergeError, match="not a llama.cpp LoRA adapter"):
        merge_lora(base, base, tmp_path / "x.gguf")
    with pytest.raises(MergeError, match="needs lora_a and lora_b"):
        read_lora_adapter(write_adapter(tmp_path / "half.gguf", drop_b=True))
    with pytest.raises(MergeError, match="lacks.*blk.0.attn_k.weight"):
        merge_lora(base, write_adapter(tmp_path / "k.gguf", extra="blk.0.attn_k.weight"), tmp_path / "x.gguf")
    with pytest.raises(MergeError, match="architecture 'qwen2'"):
        merge_lora(base, write_adapter(tmp_path / "q.gguf", arch="qwen2"), tmp_path / "x.gguf")
    with pytest.raises(ValueError, match="quant must be one of"):
        merged_gguf(base, base, quant="q4_1")  # type: ignore[arg-type]


@pytest.mark.slow
def test_real_merged_model_loads_and_extracts(tmp_path):
    from ptoie import Extractor
    from ptoie.extract.config import ModelConfig
    from ptoie.extract.extractor import model_files

    model_path, lora_path = model_files(ModelConfig().with_default_model())
    path = merged_gguf(model_path, lora_path, quant="q4_0", cache_dir=tmp_path)
    with Extractor(path, temperature=0, max_tokens=40, n_parallel=2, n_threads=2) as ex:
        result = ex.extract_batch(["Machado de Assis escreveu Dom Casmurro."])[0]
    # the fine-tuned behaviour survived the merge: a well-formed triple, not the base model's prose
    assert [t.parts for t in result.triples] == [("Machado de Assis", "escreveu", "Dom Casmurro")]

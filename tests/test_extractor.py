"""The GGUF extractor on the real embedded SmolLM2-135M model, and its error paths."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ptoie import Extractor, ModelLoadError
from ptoie.extract.config import ModelConfig
from ptoie.extract.default_model import EMBEDDED_SMOLLM2
from ptoie.extract.extractor import model_files
from ptoie.resources import bundled_path, embedded_base_gguf

SENTENCES = ["Pedro Álvares Cabral chegou ao Brasil em 1500.",
             "Machado de Assis escreveu Dom Casmurro.",
             "A cidade do Porto fica no norte de Portugal."]


@pytest.fixture(scope="module")
def base_extractor():
    with Extractor(embedded_base_gguf(), temperature=0, max_tokens=24, n_parallel=2,
                   grammar=False) as ex:
        yield ex


@pytest.mark.slow
def test_real_extraction_end_to_end(base_extractor):
    results = base_extractor.extract_batch(SENTENCES)
    assert [r.sentence for r in results] == SENTENCES
    for r in results:
        assert r.prompt_tokens > 40           # the ChatML prompt went through the tokenizer
        assert 0 < r.generated_tokens <= 24   # the model generated something, bounded
        assert r.raw_output                    # the untrained base writes text, not nothing
    assert base_extractor.model_id == embedded_base_gguf().name


@pytest.mark.slow
def test_batched_decoding_is_reproducible(base_extractor):
    first = [r.raw_output for r in base_extractor.extract_batch(SENTENCES)]
    again = [r.raw_output for r in base_extractor.extract_batch(SENTENCES)]
    assert first == again


@pytest.mark.slow
def test_an_answer_ends_before_the_first_stop_text(base_extractor):
    """The backend knows no chat format: it stops where the answer holds one of the stop texts it
    is given (the extractor gives every turn marker, ptoie.extract.prompt.STOP_TEXTS) and leaves
    that text out."""
    from ptoie.extract.config import DecodingConfig
    from ptoie.extract.prompt import render_prompt

    backend = base_extractor._backend
    prompt = render_prompt(SENTENCES[1], base_extractor.chat_format)
    decoding = DecodingConfig(temperature=0, max_tokens=24, grammar=False)
    [whole] = backend.generate([prompt], decoding)
    stop = whole.text.split()[1]
    [cut] = backend.generate([prompt], decoding, stop=("<|im_start|>", stop))
    assert cut.text == whole.text[:whole.text.find(stop)]
    assert len(cut.token_texts) < len(whole.token_texts)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="model file not found"):
        Extractor(tmp_path / "nope.gguf")


def test_corrupt_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)  # right magic, broken body: llama.cpp must refuse it
    with pytest.raises(ModelLoadError, match="could not load"):
        Extractor(bad)
    not_gguf = tmp_path / "text.gguf"
    not_gguf.write_text("hello")
    with pytest.raises(ModelLoadError, match="not a GGUF"):
        Extractor(not_gguf)


def test_cli_exits_2_with_a_message_for_a_corrupt_model(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    proc = subprocess.run([sys.executable, "-m", "ptoie.cli.main", "extract", "--model", str(bad), "Olá."],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "not a GGUF" in proc.stderr and str(bad) in proc.stderr


def test_a_positive_end_bias_is_a_clear_error():
    with pytest.raises(ValueError, match="end_bias must be <= 0"):
        Extractor(embedded_base_gguf(), end_bias=1.0)


def test_bad_lora_merge_is_a_clear_error():
    model_path, lora_path = model_files(ModelConfig().with_default_model())
    with pytest.raises(ValueError, match="lora_merge must be one of 'auto', 'q4_0', 'q8_0', 'f16' or None"):
        Extractor(model_path, lora_path=lora_path, lora_merge="q4_1")


@pytest.mark.slow
def test_adapter_merged_or_applied_at_run_time():
    """Default: the adapter is merged into a cached model (Q8_0 matrices on the default's k-quant
    base); lora_merge=None applies it in llama.cpp. Both are the fine-tuned model."""
    model_path, lora_path = model_files(ModelConfig().with_default_model())
    sentence = "Machado de Assis escreveu Dom Casmurro."
    for merge in ("auto", None):
        with Extractor(model_path, lora_path=lora_path, lora_merge=merge, temperature=0,
                       max_tokens=32, n_parallel=1) as ex:
            assert (ex.loaded_path != model_path) == (merge is not None)
            assert ex.model_id == f"{model_path.name}+{lora_path.name}"
            triples = ex.extract_batch([sentence])[0].triples
        assert [t.parts for t in triples] == [("Machado de Assis", "escreveu", "Dom Casmurro")], merge


@pytest.mark.slow
def test_prompts_longer_than_n_batch_are_fed_over_several_decodes():
    # each prompt suffix (~40 tokens) exceeds n_batch=16: before, such a prompt was never admitted
    with Extractor(embedded_base_gguf(), temperature=0, max_tokens=8, n_parallel=2, n_batch=16,
                   grammar=False) as ex:
        results = ex.extract_batch(SENTENCES)
    assert [r.sentence for r in results] == SENTENCES
    assert all(r.prompt_tokens > 40 and 0 < r.generated_tokens <= 8 for r in results)
    with pytest.raises(ValueError, match="n_batch must be >= n_parallel"):
        Extractor(embedded_base_gguf(), n_parallel=4, n_batch=2)


@pytest.mark.slow
def test_kv_cache_is_shared_by_admission_not_sized_for_every_worst_case(monkeypatch):
    """The cache holds max(n_ctx, n_parallel * KV_CELLS_PER_SLOT) cells; a sentence waits until its
    suffix + max_tokens fit beside the running ones, so a large answer budget lowers parallelism
    instead of overflowing the cache."""
    from ptoie.extract import _backend as backend_module

    active_per_decode: list[int] = []
    decode = backend_module.LlamaBackend._decode
    monkeypatch.setattr(backend_module.LlamaBackend, "_decode", lambda self, items: (
        active_per_decode.append(len({seq for _, _, seq, _ in items} - {backend_module._PREFIX_SEQ})),
        decode(self, items))[1])
    smollm2 = dict(model_path=EMBEDDED_SMOLLM2, lora_path=bundled_path("models", "ptoie-smollm2-135m-lora-f16.gguf"))
    with Extractor(**smollm2, temperature=0, n_parallel=8, n_ctx=1024, max_tokens=600) as ex:
        backend = ex._backend
        assert backend.kv_cells == max(1024, 8 * backend_module.KV_CELLS_PER_SLOT)
        results = ex.extract_batch(SENTENCES * 3)
    shared = results[0].shared_prompt_tokens
    assert shared > 40 and all(r.shared_prompt_tokens == shared for r in results)   # the instruction, once
    smallest_reserve = min(r.prompt_tokens for r in results) - shared + 600
    assert all(r.triples for r in results)
    assert max(active_per_decode) <= (backend.kv_cells - shared) // smallest_reserve < 8
    with Extractor(**smollm2, temperature=0, n_parallel=8, max_tokens=40) as ex:  # small budget: all 8 at once
        active_per_decode.clear()
        ex.extract_batch(SENTENCES * 3)
    assert max(active_per_decode) == 8


def test_an_unknown_embedded_model_is_a_model_load_error():
    with pytest.raises(ModelLoadError, match="unknown embedded model 'embedded:nope'; known: "):
        Extractor("embedded:nope")

"""The shipped default (models/default.json): the embedded base plus ptoie's fine-tuned adapter."""

from __future__ import annotations

import gguf
import pytest

from ptoie import Extractor
from ptoie.extract.config import ModelConfig
from ptoie.extract.default_model import EMBEDDED_SMOLLM2
from ptoie.extract.extractor import model_files
from ptoie.extract.parser import parse_answer
from ptoie.resources import bundled_path

SMOLLM2_ADAPTER = bundled_path("models", "ptoie-smollm2-135m-lora-f16.gguf")

pytestmark = pytest.mark.slow


def test_default_is_the_embedded_base_with_the_shipped_lora_adapter():
    model_path, lora_path = model_files(ModelConfig().with_default_model())
    assert model_path.name == "gemma-3-270m-q4_k_m.gguf"
    assert lora_path is not None and lora_path.is_file()
    fields = gguf.GGUFReader(lora_path).fields
    assert bytes(fields["general.type"].parts[-1]).decode() == "adapter"
    assert bytes(fields["adapter.type"].parts[-1]).decode() == "lora"
    assert bytes(fields["general.architecture"].parts[-1]).decode() == "gemma3"


@pytest.fixture(scope="module")
def default_extractor():
    """The shipped default, greedy: one load for the tests that only read its answers."""
    with Extractor(temperature=0, max_tokens=48, n_parallel=3) as ex:
        yield ex


def test_default_model_extracts_the_obvious_triples(default_extractor):
    """The untrained base emits no parseable triple at all (docs/evaluation.md); the fine-tuned
    default must find the one fact of each of these simple sentences."""
    sentences = ["Machado de Assis escreveu Dom Casmurro.",
                 "A Universidade de São Paulo foi fundada em 1934.",
                 "O Brasil é o maior país da América do Sul."]
    ex = default_extractor
    assert ex.model_id == "gemma-3-270m-q4_k_m.gguf+ptoie-gemma3-270m-lora-f16.gguf"
    assert ex.lora_merge == "q8_0"        # auto: the base is a k-quant
    results = ex.extract_batch(sentences)
    parts = [[t.parts for t in r.triples] for r in results]
    assert parts[0] == [("Machado de Assis", "escreveu", "Dom Casmurro")]
    assert ("A Universidade de São Paulo", "foi fundada em", "1934") in parts[1]
    assert any(arg1 == "O Brasil" and rel.startswith("é") for arg1, rel, _ in parts[2]), parts[2]
    assert all(r.rejected_lines == 0 for r in results)
    assert all(0 < t.confidence <= 1 for r in results for t in r.triples)


FORMAS = "Alan, que estuda na UFBA, é membro da Formas, e Maria mora em Salvador desde 2010."


def test_end_bias_goes_on_to_the_next_fact_and_ranks_it_lower():
    """end_bias (default -2), on the SmolLM2 adapter, whose answers stop after one fact: the
    one-triple habit is overridden, the second fact comes out with a confidence that carries the
    model's own doubt about going on; end_bias 0 gives the paper's decoding back (one triple)."""
    with Extractor(EMBEDDED_SMOLLM2, lora_path=SMOLLM2_ADAPTER, temperature=0, max_tokens=96) as ex:
        assert ex.decoding.end_bias == -2.0
        triples = ex.extract(FORMAS)
    parts = [t.parts for t in triples]
    assert parts[:2] == [("Alan", "é membro", "da Formas"), ("Maria", "mora em", "Salvador desde 2010")]
    assert triples[1].confidence < triples[0].confidence
    with Extractor(EMBEDDED_SMOLLM2, lora_path=SMOLLM2_ADAPTER, temperature=0, max_tokens=96,
                   end_bias=0.0) as ex:
        assert [t.parts for t in ex.extract(FORMAS)] == [("Alan", "é membro", "da Formas")]


def test_a_triple_the_sentence_does_not_hold_is_dropped_and_counted(default_extractor):
    """require_spans (default on): for a title the model writes a triple whose arg2 lies inside
    its arg1; it is dropped and counted, the raw answer keeps it, and the title gets no triple.
    Off (the parser the extractor calls, on the same answer), the triple stays."""
    title = "Geografia do Brasil"
    assert default_extractor.decoding.require_spans is True
    result = default_extractor.extract_batch([title])[0]
    assert result.raw_output == "Geografia do Brasil | é | a maior parte do Brasil"
    assert (result.triples, result.unsupported_triples) == ([], 1)
    kept = parse_answer(result.raw_output, title, require_spans=False)
    assert [t.parts for t in kept.triples] == [("Geografia do Brasil", "é", "a maior parte do Brasil")]
    assert kept.unsupported == 0


def test_llama_cpp_and_transformers_give_the_same_answers_with_the_shipped_adapter():
    """The exported adapter GGUF is the trained LoRA: read back into peft on the de-quantised base,
    transformers' greedy answers equal llama.cpp's (adapter applied at run time, no grammar,
    end_bias 0: the plain greedy decoding both libraries do)."""
    from ptoie.training.config import TrainConfig
    from ptoie.training.generate_hf import generate_answers
    from ptoie.training.train import load_model, load_tokenizer
    _, lora_path = model_files(ModelConfig().with_default_model())
    sentences = ["Machado de Assis escreveu Dom Casmurro.", "Fernando Pessoa nasceu em Lisboa em 1888."]
    with Extractor(temperature=0, max_tokens=24, n_parallel=2, lora_merge=None, grammar=False, require_spans=False,
                   end_bias=0.0) as ex:
        llama = [r.raw_output for r in ex.extract_batch(sentences)]
    config = TrainConfig.from_dict({"base_model": "embedded:gemma3-270m", "method": "lora", "lora_r": 32,
                                    "lora_alpha": 64, "lora_dropout": 0.0, "device": "cpu",
                                    "init_adapter": str(lora_path)})
    model = load_model(config, "cpu").merge_and_unload().eval()
    hf = generate_answers(model, load_tokenizer("embedded:gemma3-270m"), sentences, max_new_tokens=24)
    assert hf == llama

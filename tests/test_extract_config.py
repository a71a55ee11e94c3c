"""The extractor's settings (ptoie.extract.config): each wrong value is refused once, at
construction, by an error that names its field; the shipped default model is named once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ptoie import Extractor
from ptoie.batch import BatchConfig
from ptoie.extract.config import (ConfigError, DecodingConfig, ModelConfig, configs_from_settings,
                                  extraction_settings)


@pytest.mark.parametrize("config, settings, field, message", [
    (ModelConfig, {"lora_path": "a.gguf"}, "lora_path", "needs model_path"),
    (ModelConfig, {"lora_merge": "q4_1"}, "lora_merge", "must be one of 'auto', 'q4_0', 'q8_0', 'f16' or None"),
    (ModelConfig, {"n_ctx": 0}, "n_ctx", "must be >= 1 (got 0)"),
    (ModelConfig, {"n_parallel": 0}, "n_parallel", "must be >= 1 (got 0)"),
    (ModelConfig, {"n_parallel": "4"}, "n_parallel", "must be an int (got '4')"),
    (ModelConfig, {"n_threads": 0}, "n_threads", "omit it to use every core"),
    (ModelConfig, {"n_gpu_layers": -2}, "n_gpu_layers", "-1 offloads every layer"),
    (ModelConfig, {"n_parallel": 4, "n_batch": 2}, "n_batch", "must be >= n_parallel (got 2, n_parallel 4)"),
    (ModelConfig, {"verbose": 1}, "verbose", "must be a bool (got 1)"),
    (ModelConfig, {"model_path": 3}, "model_path", "must be a str or a path or None (got 3)"),
    (DecodingConfig, {"temperature": -0.1}, "temperature", "0 decodes greedily"),
    (DecodingConfig, {"top_p": 1.5}, "top_p", "must be between 0 and 1 (got 1.5)"),
    (DecodingConfig, {"min_p": -1}, "min_p", "must be between 0 and 1 (got -1)"),
    (DecodingConfig, {"top_k": -1}, "top_k", "must be >= 0 (got -1)"),
    (DecodingConfig, {"max_tokens": 0}, "max_tokens", "must be >= 1 (got 0)"),
    (DecodingConfig, {"seed": -1}, "seed", "must be between 0 and 4294967295 (got -1)"),
    (DecodingConfig, {"end_bias": 1.0}, "end_bias", "must be <= 0 (got 1.0): it only turns an end"),
    (DecodingConfig, {"grammar": "yes"}, "grammar", "must be a bool (got 'yes')"),
    (DecodingConfig, {"require_spans": None}, "require_spans", "must be a bool (got None)"),
])
def test_every_error_names_its_field(config, settings, field, message):
    with pytest.raises(ConfigError) as error:
        config(**settings)
    assert error.value.setting == field
    assert str(error.value).startswith(f"{field} ") and message in str(error.value), str(error.value)


def test_an_error_can_be_worded_with_other_names():
    with pytest.raises(ConfigError) as error:
        ModelConfig(lora_path="a.gguf")
    worded = str(error.value.worded(lambda name: "--" + name.replace("_", "-")))
    assert worded.startswith("--lora-path needs --model-path: the shipped default model brings")


def test_the_extractor_refuses_a_bad_setting_before_loading_anything(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ConfigError, match=r"^end_bias must be <= 0 \(got 1\.0\)"):
        Extractor(missing, end_bias=1.0)
    with pytest.raises(ConfigError, match="^lora_path needs model_path"):
        Extractor(lora_path=missing)
    with pytest.raises(TypeError, match="unknown setting.s. temprature: the settings are the fields"):
        Extractor(missing, temprature=0)
    with pytest.raises(TypeError, match="model_path both"):
        Extractor(missing, model_path=missing)


def test_settings_by_name_go_over_the_given_configs():
    model, decoding = configs_from_settings({"n_parallel": 2, "temperature": 0},
                                            decoding=DecodingConfig(end_bias=0.0, temperature=0.5))
    assert (model.n_parallel, decoding.temperature, decoding.end_bias) == (2, 0, 0.0)
    assert configs_from_settings({}) == (ModelConfig(), DecodingConfig())


def test_the_default_model_is_named_with_its_adapter():
    named = ModelConfig(n_parallel=3).with_default_model()
    assert named.model_path == "embedded:gemma3-270m" and named.n_parallel == 3
    assert Path(named.lora_path).name == "ptoie-gemma3-270m-lora-f16.gguf" and Path(named.lora_path).is_file()
    explicit = ModelConfig(model_path="embedded:smollm2")
    assert explicit.with_default_model() is explicit       # a named model stays as it is (no adapter)


def test_extraction_settings_are_every_field_but_the_runtime_ones():
    settings = extraction_settings(ModelConfig(model_path=Path("m.gguf"), n_threads=3), DecodingConfig())
    assert list(settings) == ["model_path", "lora_path", "lora_merge", "n_ctx", "n_parallel", "temperature",
                              "top_p", "min_p", "top_k", "max_tokens", "seed", "end_bias", "grammar",
                              "require_spans"]
    assert settings["model_path"] == "m.gguf"          # a JSON value


def test_the_job_records_the_default_model_it_runs(tmp_path):
    config = BatchConfig(inputs=(tmp_path,), out=tmp_path / "kg.ttl")
    with pytest.raises(ValueError, match="needs the model named"):
        config.job_settings()
    settings = config.with_default_model().job_settings()
    assert settings["model_path"] == "embedded:gemma3-270m"
    assert settings["lora_path"].endswith("ptoie-gemma3-270m-lora-f16.gguf")
    worker = dataclasses.replace(config, threads_per_worker=3, gpus_per_worker=0.5).worker_model()
    assert (worker.n_threads, worker.n_gpu_layers) == (3, -1)

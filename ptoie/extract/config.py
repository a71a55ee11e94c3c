"""The extractor's settings: :class:`ModelConfig` (which model, how llama.cpp runs it) and
:class:`DecodingConfig` (how an answer is decoded and which of its triples are kept).

One source for every place that takes these settings: :class:`ptoie.Extractor`, the batch job's
:class:`ptoie.batch.config.BatchConfig` (which embeds both) and the command-line flags of
``ptoie extract``, ``ptoie-eval`` and ``ptoie-batch`` (generated from the fields by
:mod:`ptoie.cli.options`). Each field is documented under its definition (the first paragraph is
the flag's help) and checked once, in ``__post_init__``: a wrong value raises :class:`ConfigError`
naming the field and the fix.

A field's metadata may hold ``group`` (the flag group: ``model``, ``runtime`` or ``sampling``;
``runtime`` settings change how fast the model runs, not what it extracts), ``flag`` (a command-line
name other than ``--field-name``) and ``shortcut`` (a second flag that sets a fixed value).
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ptoie.extract.default_model import default_model_setting

LoraMerge = Literal["auto", "q4_0", "q8_0", "f16"]
"""``q4_0``, ``q8_0``, ``f16``: the adapter merged into the model in that format
(:data:`ptoie.extract.lora_merge.MERGED_QUANTS`); ``auto``: chosen from the base."""

RUNTIME = "runtime"
"""The group of the settings that change how the model runs, not what it extracts."""


class ConfigError(ValueError):
    """A setting the extractor cannot run with; the message names the setting and the fix.

    ``mentions``: other settings the message names; :meth:`worded` gives the same message with
    every setting named otherwise (a command line's flags)."""

    def __init__(self, setting: str, problem: str, *, mentions: tuple[str, ...] = ()) -> None:
        super().__init__(f"{setting} {problem}")
        self.setting = setting
        self.problem = problem
        self.mentions = mentions

    def worded(self, name: Callable[[str], str]) -> ConfigError:
        """The same error with each setting called ``name(setting)``."""
        problem = self.problem
        for other in self.mentions:
            problem = re.sub(rf"(?<![\w-]){re.escape(other)}(?![\w-])", name(other), problem)
        return ConfigError(name(self.setting), problem)


def _meta(group: str, **more: Any) -> dict[str, Any]:
    return {"group": group, **more}


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Which model the extractor loads and how llama.cpp runs it."""

    model_path: str | os.PathLike[str] | None = field(default=None, metadata=_meta("model", flag="--model"))
    """GGUF model file, or an embedded base: ``embedded:gemma3-270m``, ``embedded:smollm2``.
    Omitted (None): the shipped default model and its adapter (``models/default.json``).

    The default is named once, by :meth:`with_default_model`: the extractor loads it, the batch
    job records it in its settings and sends it to every worker."""
    lora_path: str | os.PathLike[str] | None = field(default=None, metadata=_meta("model", flag="--lora"))
    """llama.cpp LoRA-adapter GGUF applied on ``model_path``, which it needs (the shipped default
    model brings its own adapter)."""
    lora_merge: LoraMerge | None = field(default="auto", metadata=_meta("model"))
    """How the adapter is applied: merged into the model at first use, cached, in this format
    (``auto``: ``q8_0`` on a k-quant base, ``q4_0`` otherwise); none: at run time on every token.

    A merged model decodes faster than an adapter applied at run time on CPU
    (docs/throughput.md); the merge takes seconds, once (:mod:`ptoie.extract.lora_merge`).
    ``auto`` is :func:`ptoie.extract.lora_merge.merge_quant_for`: requantizing a k-quant base
    such as Gemma's Q4_K_M into ``q4_0`` costs F1, a legacy Q4_1 base loses nothing."""
    n_ctx: int = field(default=2048, metadata=_meta("model"))
    """Context tokens per sentence: the prompt (about 63 tokens), the sentence and ``max_tokens``
    of answer; a sentence that does not fit gets no answer.

    A sentence of 600 characters is about 210 tokens of Portuguese prose, 600 at worst. The KV
    cache holds max(``n_ctx``, 320 x ``n_parallel``) cells shared by admission: a sentence starts
    when its prompt and ``max_tokens`` fit beside the running ones (``ptoie.extract._backend``)."""
    n_parallel: int = field(default=16, metadata=_meta("model"))
    """Sentences decoded together (continuous batching); 1: one at a time."""

    n_threads: int | None = field(default=None, metadata=_meta(RUNTIME, flag="--threads"))
    """CPU threads; omitted (None): all cores of this machine."""
    n_gpu_layers: int = field(default=0, metadata=_meta(RUNTIME))
    """Layers offloaded to the GPU on a CUDA or Metal build of llama.cpp; -1: all."""
    n_batch: int | None = field(default=None, metadata=_meta(RUNTIME))
    """Most tokens per llama_decode call (the prompts of newly admitted sentences plus one token
    per running sentence); omitted (None): max(512, ``n_ctx``)."""
    verbose: bool = field(default=False, metadata=_meta(RUNTIME))
    """Let llama.cpp print its logs."""

    def __post_init__(self) -> None:
        _check_types(self)
        if self.lora_path is not None and self.model_path is None:
            raise ConfigError("lora_path", "needs model_path: the shipped default model brings its "
                              "own adapter; give the base the adapter was trained on "
                              "(e.g. embedded:gemma3-270m) as model_path",
                              mentions=("model_path",))
        _at_least(self, "n_ctx", 1)
        _at_least(self, "n_parallel", 1, "1 decodes one sentence at a time")
        _at_least(self, "n_threads", 1, "omit it to use every core")
        _at_least(self, "n_gpu_layers", -1, "-1 offloads every layer")
        if self.n_batch is not None and self.n_batch < self.n_parallel:
            raise ConfigError("n_batch", f"must be >= n_parallel (got {self.n_batch}, n_parallel "
                              f"{self.n_parallel}): each running sentence feeds a token per decode",
                              mentions=("n_parallel",))

    def with_default_model(self) -> ModelConfig:
        """This config, with the shipped default model and adapter (``models/default.json``)
        filled in when ``model_path`` is None."""
        if self.model_path is not None:
            return self
        model, lora = default_model_setting()
        return dataclasses.replace(self, model_path=model, lora_path=lora)


@dataclass(frozen=True, kw_only=True)
class DecodingConfig:
    """How an answer is decoded (sampling, grammar) and which of its triples are kept.

    The sampling defaults are the seed paper's (Melo, Cabral, Claro); ``end_bias`` and
    ``require_spans`` are ptoie's (docs/evaluation.md)."""

    temperature: float = field(default=0.2, metadata=_meta(
        "sampling", shortcut=("--greedy", 0.0, "greedy decoding: --temperature 0")))
    """Sampling temperature; 0: greedy decoding."""
    top_p: float = field(default=0.95, metadata=_meta("sampling"))
    """Sample among the most likely tokens that together hold this probability."""
    min_p: float = field(default=0.05, metadata=_meta("sampling"))
    """Leave out tokens less likely than this fraction of the most likely one."""
    top_k: int = field(default=40, metadata=_meta("sampling"))
    """Sample among this many most likely tokens; 0: all."""
    max_tokens: int = field(default=160, metadata=_meta("sampling"))
    """Generated tokens per sentence, at most."""
    seed: int = field(default=0, metadata=_meta("sampling"))
    """Seed of the sampling, the same for each sentence: a sentence's answer does not depend on
    its neighbours or on the order of the corpus."""
    end_bias: float = field(default=-2.0, metadata=_meta("sampling"))
    """Where the model chose to end its answer, go on with a new line when its logit for a newline
    beats its logit for ending plus this; negative: more triples, 0: the paper's decoding.

    Nothing else in the answer changes (``ptoie.extract._backend``), and only where the grammar
    allows a new line. Negative: the model goes on to another triple unless it is sure the answer
    is complete; the later triples get lower confidences
    (:func:`ptoie.extract.generation.line_confidences`). At -2.0 the SmolLM2 adapter writes 1.50
    triples per PUD-100 sentence instead of 1.02, lexical F1 0.511 vs 0.504, AUC 0.333 vs 0.287;
    the default Gemma 3 270M adapter is sure of its ends and rarely goes on (docs/evaluation.md,
    "End bias")."""
    grammar: bool = field(default=True, metadata=_meta("sampling"))
    """Constrain decoding to the answer format (a GBNF grammar), so every answer parses."""
    require_spans: bool = field(default=True, metadata=_meta("sampling"))
    """Keep only triples whose arg1 and arg2 are non-overlapping spans of the sentence and whose
    parts differ; the others are dropped and counted.

    The rule is :func:`ptoie.extract.parser.supported`; the dropped triples are counted in
    ``SentenceResult.unsupported_triples``. TransAlign's gold extractions all have that shape; on
    its validation sentences the rule drops mostly wrong triples (docs/evaluation.md, "Span
    check"). False keeps whatever the model wrote (a model trained to write implicit
    arguments)."""

    def __post_init__(self) -> None:
        _check_types(self)
        _at_least(self, "temperature", 0, "0 decodes greedily")
        for name in ("top_p", "min_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(name, f"must be between 0 and 1 (got {getattr(self, name)})")
        _at_least(self, "top_k", 0, "0 samples among all tokens")
        _at_least(self, "max_tokens", 1)
        if not 0 <= self.seed < 2**32:
            raise ConfigError("seed", f"must be between 0 and {2**32 - 1} (got {self.seed})")
        if self.end_bias > 0:
            raise ConfigError("end_bias", f"must be <= 0 (got {self.end_bias}): it only turns an "
                              "end into a new line; 0 is the paper's decoding")


CONFIGS: tuple[type[ModelConfig] | type[DecodingConfig], ...] = (ModelConfig, DecodingConfig)


def configs_from_settings(settings: Mapping[str, Any], *, model: ModelConfig | None = None,
                          decoding: DecodingConfig | None = None) -> tuple[ModelConfig, DecodingConfig]:
    """``(model, decoding)`` with ``settings`` (field name -> value, of either config) set over
    ``model`` and ``decoding`` (None: the defaults). An unknown name is a TypeError naming it."""
    model, decoding = model or ModelConfig(), decoding or DecodingConfig()
    names = [{f.name for f in dataclasses.fields(config)} for config in CONFIGS]
    unknown = sorted(set(settings) - names[0] - names[1])
    if unknown:
        raise TypeError(f"unknown setting(s) {', '.join(unknown)}: the settings are the fields of "
                        f"ModelConfig ({', '.join(sorted(names[0]))}) and DecodingConfig "
                        f"({', '.join(sorted(names[1]))})")
    model_settings = {k: v for k, v in settings.items() if k in names[0]}
    decoding_settings = {k: v for k, v in settings.items() if k in names[1]}
    if model_settings:
        model = dataclasses.replace(model, **model_settings)
    if decoding_settings:
        decoding = dataclasses.replace(decoding, **decoding_settings)
    return model, decoding


def extraction_settings(model: ModelConfig, decoding: DecodingConfig) -> dict[str, Any]:
    """The settings that decide what is extracted, as JSON values: every field but the
    :data:`RUNTIME` ones (threads, GPU layers, ``n_batch``, logs)."""
    settings: dict[str, Any] = {}
    for config in (model, decoding):
        for f in dataclasses.fields(config):
            if f.metadata.get("group") != RUNTIME:
                value = getattr(config, f.name)
                settings[f.name] = os.fspath(value) if isinstance(value, os.PathLike) else value
    return settings


# -- checks ---------------------------------------------------------------------------------------
def _at_least(config: object, name: str, low: int, hint: str = "") -> None:
    value = getattr(config, name)
    if value is not None and value < low:
        raise ConfigError(name, f"must be >= {low} (got {value})" + (f": {hint}" if hint else ""))


def _check_types(config: object) -> None:
    """Each field's value against its annotation (a Literal's choices included)."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if not _fits(value, hints[f.name]):
            raise ConfigError(f.name, f"must be {_describe(hints[f.name])} (got {value!r})")


def union_members(hint: Any) -> tuple[Any, ...]:
    """The members of a union type hint (``int | None`` -> ``(int, NoneType)``), else ``(hint,)``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _fits(value: Any, hint: Any) -> bool:
    for member in union_members(hint):
        origin = typing.get_origin(member)
        if member is type(None) and value is None:
            return True
        if origin is Literal and value in typing.get_args(member):
            return True
        if origin is os.PathLike and isinstance(value, os.PathLike):
            return True
        if member is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if member in (int, str, bool) and isinstance(value, member) and (
                member is bool or not isinstance(value, bool)):
            return True
    return False


def _describe(hint: Any) -> str:
    words = []
    for member in union_members(hint):
        if member is type(None):
            words.append("None")
        elif typing.get_origin(member) is Literal:
            words.append("one of " + ", ".join(repr(c) for c in typing.get_args(member)))
        elif typing.get_origin(member) is os.PathLike:
            words.append("a path")
        else:
            words.append(f"{'an' if member.__name__[0] in 'aeiou' else 'a'} {member.__name__}")
    return " or ".join(words)

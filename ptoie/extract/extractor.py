"""The GGUF triple extractor: sentence -> prompt -> llama.cpp -> parser -> triples.

One public class, :class:`Extractor`, whose settings are two configs grouped by concern
(:class:`~ptoie.extract.config.ModelConfig`, :class:`~ptoie.extract.config.DecodingConfig`); the
llama.cpp work happens in a private backend (``ptoie.extract._backend``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptoie.extract.answer_grammar import answer_grammar
from ptoie.extract.config import DecodingConfig, ModelConfig, configs_from_settings
from ptoie.extract.default_model import resolve_model_path
from ptoie.extract.generation import Generation, line_confidences
from ptoie.extract.parser import parse_answer
from ptoie.extract.prompt import STOP_TEXTS, ChatFormat, chat_format_for, render_prompt, shared_prefix
from ptoie.triple import Triple

if TYPE_CHECKING:  # pragma: no cover
    from ptoie.extract._backend import LlamaBackend
    from ptoie.extract.lora_merge import MergedQuant


class ModelLoadError(RuntimeError):
    """A model or adapter file is missing, is not GGUF, or llama.cpp could not load it."""


def check_gguf(path: Path, what: str) -> Path:
    """``path``, or :class:`ModelLoadError` naming ``what`` when it is missing or not a GGUF file."""
    if not path.is_file():
        raise ModelLoadError(f"{what} file not found: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise ModelLoadError(
            f"{what} file is not a GGUF model (first bytes {magic!r}, expected b'GGUF'): {path}"
        )
    return path


def model_files(model: ModelConfig, *, names: tuple[str, str] = ("model", "LoRA adapter")
                ) -> tuple[Path, Path | None]:
    """The GGUF files of ``model`` (its ``model_path`` set, see
    :meth:`~ptoie.extract.config.ModelConfig.with_default_model`): the base, an ``embedded:``
    name found on this machine, and the adapter or None. :class:`ModelLoadError` naming the file
    (as ``names``) when one is missing or not GGUF."""
    if model.model_path is None:
        raise ValueError("model_files needs a model_path: call ModelConfig.with_default_model() first")
    try:  # an embedded base that is unknown or not installed is a model that cannot load
        base = resolve_model_path(model.model_path)
    except FileNotFoundError as exc:
        raise ModelLoadError(str(exc)) from exc
    adapter = Path(model.lora_path).expanduser() if model.lora_path is not None else None
    return (check_gguf(base, names[0]),
            check_gguf(adapter, names[1]) if adapter is not None else None)


@dataclass(slots=True)
class SentenceResult:
    """What the extractor made of one sentence."""

    sentence: str
    triples: list[Triple]
    raw_output: str
    rejected_lines: int = 0
    unsupported_triples: int = 0
    """Triples the answer held that ``require_spans`` dropped."""
    generated_tokens: int = 0
    prompt_tokens: int = 0
    shared_prompt_tokens: int = 0
    """Tokens of the prompt shared by every sentence (the instruction), evaluated once per
    extractor rather than per sentence."""


class Extractor:
    """Extract ``(arg1, rel, arg2)`` triples from Portuguese sentences with a GGUF model.

    Example::

        from ptoie import Extractor
        ex = Extractor()                      # the shipped default model
        ex.extract("O Brasil é um país da América do Sul.")
        Extractor("embedded:smollm2", lora_path="adapter.gguf", temperature=0)
        Extractor(model=ModelConfig(n_parallel=4), decoding=DecodingConfig(end_bias=0.0))

    Args:
        model_path: GGUF model or ``embedded:`` base (``ModelConfig.model_path``); None: the
            shipped default (``models/default.json``: the embedded Gemma 3 270M base plus
            ptoie's fine-tuned adapter).
        model: which model and how llama.cpp runs it (:class:`~ptoie.extract.config.ModelConfig`).
        decoding: how answers are decoded and which triples are kept
            (:class:`~ptoie.extract.config.DecodingConfig`).
        settings: any field of either config by name (``lora_path=...``, ``temperature=0``,
            ``n_parallel=4`` ...), set over ``model`` and ``decoding``; an unknown name is a
            TypeError.

    A wrong setting raises :class:`~ptoie.extract.config.ConfigError` (a ValueError) naming it; a
    model that cannot be loaded raises :class:`ModelLoadError`.
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None, /, *,
                 model: ModelConfig | None = None, decoding: DecodingConfig | None = None,
                 **settings: Any) -> None:
        if model_path is not None:
            if "model_path" in settings:
                raise TypeError("Extractor() got model_path both as its first argument and by name")
            settings["model_path"] = model_path
        model, self.decoding = configs_from_settings(settings, model=model, decoding=decoding)
        self.model: ModelConfig = model.with_default_model()
        """The model settings, the shipped default named when none was given."""
        self.model_path, self.lora_path = model_files(self.model)
        self.lora_merge: MergedQuant | None = self._merge_format()
        """How the adapter is applied: merged in this format, or None (at run time, or no adapter)."""
        self.loaded_path = self._merged_model()
        """The GGUF llama.cpp loads: ``model_path``, or the cached merge of model and adapter."""
        self._backend = self._load_backend()
        self.chat_format: ChatFormat = chat_format_for(self._backend.architecture)
        """The turn markup of the model's family (from the GGUF's ``general.architecture``)."""
        self._backend.share_prefix(shared_prefix(self.chat_format))

    def _merge_format(self) -> MergedQuant | None:
        if self.lora_path is None or self.model.lora_merge is None:
            return None
        if self.model.lora_merge != "auto":
            return self.model.lora_merge
        from ptoie.extract.lora_merge import merge_quant_for  # late: numpy and gguf, for an adapter only

        return merge_quant_for(self.model_path)

    def _merged_model(self) -> Path:
        if self.lora_merge is None or self.lora_path is None:
            return self.model_path
        from ptoie.extract.lora_merge import MergeError, merged_gguf  # late: numpy and gguf, for an adapter only

        try:
            return merged_gguf(self.model_path, self.lora_path, quant=self.lora_merge)
        except ImportError as exc:
            raise ModelLoadError(f"lora_merge={self.lora_merge!r} needs the gguf package ({exc}): "
                                 "pip install gguf, or pass lora_merge=None") from exc
        except (MergeError, ValueError, OSError) as exc:
            raise ModelLoadError(f"could not merge adapter {self.lora_path} into {self.model_path}: "
                                 f"{exc} (lora_merge=None applies it at run time instead)") from exc

    def _load_backend(self) -> LlamaBackend:
        from ptoie.extract._backend import LlamaBackend  # late: keeps `import ptoie` free of llama.cpp

        m = self.model
        try:
            return LlamaBackend(
                self.loaded_path, lora_path=None if self.lora_merge else self.lora_path,
                n_ctx=m.n_ctx, n_threads=m.n_threads or os.cpu_count() or 1,
                n_gpu_layers=m.n_gpu_layers, n_parallel=m.n_parallel,
                n_batch=m.n_batch or max(512, m.n_ctx),
                grammar=answer_grammar() if self.decoding.grammar else None, verbose=m.verbose)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {self.model_path}"
                + (f" with adapter {self.lora_path}" if self.lora_path else "")
                + f": {exc}"
            ) from exc

    @property
    def model_id(self) -> str:
        """Base file name, plus ``+`` adapter file name when one is applied (merged or not)."""
        name = self.model_path.name
        return f"{name}+{self.lora_path.name}" if self.lora_path else name

    def extract(self, sentence: str) -> list[Triple]:
        """Triples of one sentence."""
        return self.extract_batch([sentence])[0].triples

    def extract_batch(self, sentences: Sequence[str]) -> list[SentenceResult]:
        """Results for ``sentences``, in order. Decodes up to ``n_parallel`` of them at once; an
        answer ends at the first turn marker of any chat format
        (:data:`ptoie.extract.prompt.STOP_TEXTS`)."""
        prompts = [render_prompt(s, self.chat_format) for s in sentences]
        generations = self._backend.generate(prompts, self.decoding, stop=STOP_TEXTS)
        return [self._result(sentence, gen) for sentence, gen in zip(sentences, generations)]

    def _result(self, sentence: str, generation: Generation) -> SentenceResult:
        parsed = parse_answer(generation.text, sentence, line_confidences(generation),
                              require_spans=self.decoding.require_spans)
        return SentenceResult(sentence=sentence, triples=parsed.triples, raw_output=generation.text,
                              rejected_lines=parsed.rejected, unsupported_triples=parsed.unsupported,
                              generated_tokens=len(generation.token_texts),
                              prompt_tokens=generation.prompt_tokens,
                              shared_prompt_tokens=generation.shared_prompt_tokens)

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> "Extractor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

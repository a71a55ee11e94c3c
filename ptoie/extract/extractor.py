"""The GGUF triple extractor: sentence -> prompt -> llama.cpp -> parser -> triples.

One public class, :class:`Extractor`, with keyword-only settings grouped by concern; the
llama.cpp work happens in a private backend (``ptoie.extract._backend``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ptoie.extract.answer_grammar import answer_grammar
from ptoie.extract.default_model import default_model, resolve_model_path
from ptoie.extract.parser import parse_answer
from ptoie.extract.prompt import render_prompt
from ptoie.triple import Triple

if TYPE_CHECKING:  # pragma: no cover
    from ptoie.extract.lora_merge import MergedQuant


class ModelLoadError(RuntimeError):
    """A model or adapter file is missing, is not GGUF, or llama.cpp could not load it."""


@dataclass(slots=True)
class SamplingSettings:
    """Decoding settings. Defaults are the seed paper's (Melo, Cabral, Claro), plus ``end_bias``."""

    temperature: float = 0.2
    """0 means greedy decoding."""
    top_p: float = 0.95
    min_p: float = 0.05
    top_k: int = 40
    max_tokens: int = 160
    """Upper bound of generated tokens per sentence."""
    seed: int = 0
    """Each sentence is decoded with this seed, so a sentence's output does not depend on its
    neighbours or on the order of the corpus."""
    end_bias: float = -2.0
    """Acts only where the model chose to end its answer: it goes on with a new line instead when
    the grammar allows one and the model's logit for a newline beats its logit for ending plus
    ``end_bias`` (``ptoie.extract._backend``; nothing else in the answer changes). Negative: the model goes
    on to another triple unless it is sure the answer is complete; the later triples get lower
    confidences (:func:`line_confidences`). 0 = the paper's decoding. -2.0 (issue 13,
    docs/evaluation.md "End bias"): on the shipped model 1.50 triples per PUD-100 sentence instead
    of 1.02, lexical F1 0.511 vs 0.504, AUC 0.333 vs 0.287."""

    def as_dict(self) -> dict[str, float | int]:
        return {"temperature": self.temperature, "top_p": self.top_p, "min_p": self.min_p,
                "top_k": self.top_k, "max_tokens": self.max_tokens, "seed": self.seed,
                "end_bias": self.end_bias}


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


@dataclass(slots=True)
class Generation:
    """Backend output for one prompt: the text and, per generated token, its text and log-prob."""

    text: str
    token_texts: list[str] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    prompt_tokens: int = 0


def line_confidences(generation: Generation) -> list[float | None]:
    """Confidence of each line of ``generation.text`` (split on newlines): exp(mean log-prob) of
    its tokens, times the probability the model gave to going on to it — the product of the
    log-probs of the newline tokens before it (1 for the first line). A later triple is one the
    model was less sure to write at all, whatever the decoding made of it (an ``end_bias`` makes
    it write lines it would have ended before).

    A token belongs to the line where it starts; a token holding a newline closes the line, and
    its probability goes to the lines after it, not into a line's mean.
    """
    lines = generation.text.split("\n")
    sums = [0.0] * len(lines)
    counts = [0] * len(lines)
    reach = [0.0] * len(lines)
    line, carried = 0, 0.0
    for piece, logprob in zip(generation.token_texts, generation.token_logprobs):
        newlines = piece.count("\n")
        if newlines:
            carried += logprob
            for later in range(line + 1, min(line + newlines, len(lines) - 1) + 1):
                reach[later] = carried
            line += newlines
        elif piece.strip() and line < len(lines):
            sums[line] += logprob
            counts[line] += 1
    return [math.exp(s / c + r) if c else None for s, c, r in zip(sums, counts, reach)]


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


class Extractor:
    """Extract ``(arg1, rel, arg2)`` triples from Portuguese sentences with a GGUF model.

    Example::

        from ptoie import Extractor
        ex = Extractor()                      # the shipped default model
        ex.extract("O Brasil é um país da América do Sul.")

    Args:
        model_path: GGUF model; None loads the shipped default (``models/default.json``: the
            embedded Gemma 3 270M base plus ptoie's fine-tuned adapter).
        lora_path: llama.cpp LoRA-adapter GGUF applied on top of ``model_path``. Ignored when
            ``model_path`` is None (the default's own adapter is used).
        lora_merge: how the adapter is applied. ``"q4_0"``, ``"q8_0"``, ``"f16"``: merged into
            the model once and stored as that type in a cache file (:mod:`ptoie.extract.lora_merge`; the first
            use takes seconds); merged decodes faster than the adapter at run time on CPU
            (docs/throughput.md). ``"auto"`` (default): :func:`ptoie.extract.lora_merge.merge_quant_for` the
            base (Q8_0 on a k-quant base such as Gemma's Q4_K_M, Q4_0 otherwise). None: llama.cpp
            applies the adapter at run time on every token.

        n_ctx: longest context of one sentence in tokens (prompt + answer); a longer prompt
            gets no answer. The KV cache holds max(n_ctx, 320 x n_parallel) cells shared by
            admission: a sentence starts when its prompt + ``max_tokens`` fit beside the
            running ones.
        n_threads: CPU threads; None = all cores of this machine.
        n_gpu_layers: layers offloaded to the GPU (-1 = all) on a CUDA/Metal build.
        n_parallel: sentences decoded together (continuous batching); 1 = one at a time.
        n_batch: most tokens per ``llama_decode`` call (prompt suffixes of newly admitted
            sentences plus one token per running sentence); None = max(512, n_ctx).

        temperature, top_p, min_p, top_k, max_tokens, seed, end_bias: see :class:`SamplingSettings`.

        grammar: constrain decoding to the answer format (GBNF), so every output parses.
        require_spans: keep only triples whose arg1 and arg2 are two non-overlapping spans of
            the sentence and whose parts do not repeat one another
            (:func:`ptoie.extract.parser.supported`); the others are dropped and counted in
            ``SentenceResult.unsupported_triples``. TransAlign's gold extractions all have that
            shape; on its validation sentences the rule drops mostly wrong triples (issue 13,
            docs/evaluation.md "Span check"). False keeps whatever the model wrote (a model
            trained to write implicit arguments).
        verbose: let llama.cpp print its logs.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        # model
        lora_path: str | os.PathLike[str] | None = None,
        lora_merge: MergedQuant | Literal["auto"] | None = "auto",
        # hardware
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        n_parallel: int = 16,
        n_batch: int | None = None,
        # sampling
        temperature: float = 0.2,
        top_p: float = 0.95,
        min_p: float = 0.05,
        top_k: int = 40,
        max_tokens: int = 160,
        seed: int = 0,
        end_bias: float = -2.0,
        # output
        grammar: bool = True,
        require_spans: bool = True,
        verbose: bool = False,
    ) -> None:
        try:  # an embedded base that is unknown or not installed is a model that cannot load
            if model_path is None:
                spec = default_model()
                model, lora = spec.model_path, spec.lora_path
            else:
                model = resolve_model_path(model_path)
                lora = Path(lora_path).expanduser() if lora_path is not None else None
        except FileNotFoundError as exc:
            raise ModelLoadError(str(exc)) from exc
        self.model_path = check_gguf(Path(model), "model")
        self.lora_path = check_gguf(lora, "LoRA adapter") if lora is not None else None
        if n_parallel < 1:
            raise ValueError(f"n_parallel must be >= 1, got {n_parallel}")
        if end_bias > 0:
            raise ValueError(f"end_bias must be <= 0 (it only turns an end into a new line; 0 = the "
                             f"paper's decoding), got {end_bias}")
        if n_batch is not None and n_batch < n_parallel:
            raise ValueError(f"n_batch must be >= n_parallel ({n_parallel}), got {n_batch}")
        self.sampling = SamplingSettings(temperature=temperature, top_p=top_p, min_p=min_p,
                                         top_k=top_k, max_tokens=max_tokens, seed=seed,
                                         end_bias=end_bias)
        self.n_parallel = n_parallel
        self.grammar = grammar
        self.require_spans = require_spans

        from ptoie.extract.lora_merge import MERGED_QUANTS, MergeError, merge_quant_for, merged_gguf  # late: numpy/gguf only here

        if lora_merge is not None and lora_merge not in (*MERGED_QUANTS, "auto"):
            raise ValueError(f"lora_merge must be 'auto', one of {MERGED_QUANTS} or None, got {lora_merge!r}")
        if self.lora_path is None:
            lora_merge = None
        elif lora_merge == "auto":
            lora_merge = merge_quant_for(self.model_path)
        self.lora_merge: MergedQuant | None = lora_merge
        self.loaded_path = self.model_path
        """The GGUF llama.cpp loads: ``model_path``, or the cached merge of model and adapter."""
        if self.lora_merge is not None:
            try:
                self.loaded_path = merged_gguf(self.model_path, self.lora_path, quant=self.lora_merge)
            except ImportError as exc:
                raise ModelLoadError(f"lora_merge={self.lora_merge!r} needs the gguf package ({exc}): "
                                     "pip install gguf, or pass lora_merge=None") from exc
            except (MergeError, ValueError, OSError) as exc:
                raise ModelLoadError(f"could not merge adapter {self.lora_path} into {self.model_path}: "
                                     f"{exc} (lora_merge=None applies it at run time instead)") from exc

        from ptoie.extract._backend import LlamaBackend  # imported late: keeps `import ptoie` light

        try:
            self._backend = LlamaBackend(
                self.loaded_path, lora_path=None if self.lora_merge else self.lora_path, n_ctx=n_ctx,
                n_threads=n_threads or os.cpu_count() or 1, n_gpu_layers=n_gpu_layers,
                n_parallel=n_parallel, n_batch=n_batch or max(512, n_ctx),
                grammar=answer_grammar() if grammar else None,
                verbose=verbose,
            )
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
        """Results for ``sentences``, in order. Decodes up to ``n_parallel`` of them at once."""
        prompts = [render_prompt(s, self._backend.chat_format) for s in sentences]
        generations = self._backend.generate(prompts, self.sampling)
        results = []
        for sentence, gen in zip(sentences, generations):
            parsed = parse_answer(gen.text, sentence, line_confidences(gen),
                                  require_spans=self.require_spans)
            results.append(SentenceResult(sentence=sentence, triples=parsed.triples,
                                          raw_output=gen.text, rejected_lines=parsed.rejected,
                                          unsupported_triples=parsed.unsupported,
                                          generated_tokens=len(gen.token_texts),
                                          prompt_tokens=gen.prompt_tokens))
        return results

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> "Extractor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

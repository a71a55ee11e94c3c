"""Private llama.cpp backend: continuous batching over llama.cpp's public C API.

Several prompts are decoded together, each in its own KV-cache sequence, in one ``llama_decode``
call per step; a slot whose answer is complete is refilled with the next prompt at once. The
prefix all prompts share, given as text by the caller (:meth:`LlamaBackend.share_prefix`), is
evaluated once into sequence 0 and copied (not recomputed) into every slot: with a unified KV
cache the copy shares cells. The backend knows no chat format: an answer ends at an
end-of-generation token of the vocabulary, at one of the stop texts the caller gives, or where it
starts repeating a line (:func:`ptoie.extract.generation.repeats_a_line`).

The KV cache is sized for the sentences in flight, not for ``n_parallel`` worst cases: a sentence
is admitted only when the cells it may need (its prompt suffix plus ``max_tokens``, at most
``n_ctx``) fit beside those reserved by the running ones. The cache holds
``max(n_ctx, n_parallel * KV_CELLS_PER_SLOT)`` cells, so one sentence of ``n_ctx`` tokens always
fits, and typical ones run ``n_parallel`` at a time.
"""

from __future__ import annotations

import ctypes
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp
import numpy as np

from ptoie.extract.config import DecodingConfig
from ptoie.extract.generation import Generation, repeats_a_line

_PREFIX_SEQ = 0
KV_CELLS_PER_SLOT = 320
"""KV cells per parallel slot: a ~60-token shared system turn, a sentence of ~100 tokens and a
160-token answer budget (answers average ~22 tokens)."""
_BACKEND_READY = False


@ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
def _silent_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:  # pragma: no cover
    return None


def _init_backend(verbose: bool) -> None:
    global _BACKEND_READY
    if not _BACKEND_READY:
        llama_cpp.llama_backend_init()
        _BACKEND_READY = True
    if not verbose:
        llama_cpp.llama_log_set(_silent_log, ctypes.c_void_p(0))


@dataclass
class _Slot:
    seq_id: int
    index: int = -1              # position of the prompt in the request, -1 when free
    pos: int = 0                 # next KV position
    pending: list[int] = field(default_factory=list)   # tokens to feed at the next decode
    sampler: object = None       # sampling chain, without the grammar
    grammar: object = None       # grammar sampler (None: unconstrained)
    pieces: list[bytes] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)
    prompt_tokens: int = 0
    shared_tokens: int = 0       # prompt tokens copied from the shared prefix
    batch_row: int = -1          # row of this slot's logits in the last decode
    reserved: int = 0            # KV cells this slot may still fill (suffix + answer budget)

    @property
    def busy(self) -> bool:
        return self.index >= 0


@dataclass
class _Request:
    """One :meth:`LlamaBackend.generate` call: its prompts, what is left to admit, the answers."""

    prompts: Sequence[str]
    decoding: DecodingConfig
    stop: tuple[str, ...]
    results: list[Generation | None]
    queue: deque[int]
    tokenized: dict[int, list[int]] = field(default_factory=dict)
    stop_bytes: tuple[bytes, ...] = ()
    """``stop`` encoded once (the answers are matched as bytes at every step)."""

    @classmethod
    def of(cls, prompts: Sequence[str], decoding: DecodingConfig, stop: Sequence[str]) -> _Request:
        return cls(prompts, decoding, tuple(stop), [None] * len(prompts), deque(range(len(prompts))),
                   stop_bytes=tuple(text.encode() for text in stop))

    def tokens(self, index: int, tokenize: Callable[[str], list[int]]) -> list[int]:
        if index not in self.tokenized:
            self.tokenized[index] = tokenize(self.prompts[index])
        return self.tokenized[index]


class LlamaBackend:
    def __init__(self, model_path: Path, *, lora_path: Path | None, n_ctx: int, n_threads: int,
                 n_gpu_layers: int, n_parallel: int, n_batch: int, grammar: str | None, verbose: bool) -> None:
        _init_backend(verbose)
        self._model = self._ctx = self._adapter = self._batch = None
        self.n_parallel = n_parallel
        self.n_ctx_seq = n_ctx
        self.n_batch = n_batch
        self.kv_cells = max(n_ctx, n_parallel * KV_CELLS_PER_SLOT)
        self._grammar = grammar
        self._prefix: list[int] = []
        self._piece_buf = ctypes.create_string_buffer(256)
        try:
            self._load_model(model_path, n_gpu_layers)
            self._new_context(n_threads)
            if lora_path is not None:
                self._apply_adapter(lora_path)
        except ValueError:
            self.close()
            raise
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        # Candidate buffer (llama_token_data layout) for the rare steps that need the full grammar pass.
        self._candidates = np.zeros(self.n_vocab, dtype=np.dtype(
            [("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True))
        self._candidates["id"] = np.arange(self.n_vocab, dtype=np.int32)

    # -- loading ------------------------------------------------------------------------------
    def _load_model(self, model_path: Path, n_gpu_layers: int) -> None:
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = n_gpu_layers
        self._model = llama_cpp.llama_model_load_from_file(str(model_path).encode(), mparams)
        if not self._model:
            raise ValueError("llama_model_load_from_file failed (corrupt or unsupported GGUF)")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self.architecture = self._meta("general.architecture")
        """The model's ``general.architecture`` (``gemma3``, ``llama`` ...), None when absent."""
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        newline = self.tokenize("\n")
        self._newline = newline[0] if len(newline) == 1 else None
        """The vocabulary's token for a lone newline (``end_bias``); None when it has none."""

    def _new_context(self, n_threads: int) -> None:
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = self.kv_cells
        cparams.n_batch = self.n_batch
        cparams.n_ubatch = self.n_batch
        cparams.n_seq_max = self.n_parallel + 1
        cparams.kv_unified = True
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        cparams.no_perf = True
        self._ctx = llama_cpp.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            raise ValueError("llama_init_from_model failed (context too large for memory?)")

    def _apply_adapter(self, lora_path: Path) -> None:
        self._adapter = llama_cpp.llama_adapter_lora_init(self._model, str(lora_path).encode())
        if not self._adapter:
            raise ValueError(f"llama_adapter_lora_init failed for {lora_path}")
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._adapter)
        scales = (ctypes.c_float * 1)(1.0)
        if llama_cpp.llama_set_adapters_lora(self._ctx, adapters, 1, scales):
            raise ValueError(f"llama_set_adapters_lora failed for {lora_path}")

    def _meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(256)
        n = llama_cpp.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace") if n >= 0 else None

    # -- tokens -------------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 16
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, cap, False, True)
        if n < 0:  # pragma: no cover - cap is always large enough
            raise RuntimeError("tokenize buffer too small")
        return list(buf[:n])

    def _piece(self, token: int) -> bytes:
        n = llama_cpp.llama_token_to_piece(self._vocab, token, self._piece_buf, 256, 0, True)
        return self._piece_buf.raw[:max(n, 0)]

    # -- sampling -----------------------------------------------------------------------------
    def _new_sampler(self, s: DecodingConfig) -> object:
        """The sampling chain of one slot (the grammar is kept apart, see :meth:`_sample`)."""
        params = llama_cpp.llama_sampler_chain_default_params()
        params.no_perf = True
        chain = llama_cpp.llama_sampler_chain_init(params)
        add = lambda smpl: llama_cpp.llama_sampler_chain_add(chain, smpl)  # noqa: E731
        if s.temperature <= 0:
            add(llama_cpp.llama_sampler_init_greedy())
        else:
            add(llama_cpp.llama_sampler_init_top_k(s.top_k))
            add(llama_cpp.llama_sampler_init_top_p(s.top_p, 1))
            add(llama_cpp.llama_sampler_init_min_p(s.min_p, 1))
            add(llama_cpp.llama_sampler_init_temp(s.temperature))
            add(llama_cpp.llama_sampler_init_dist(s.seed))
        return chain

    def _new_grammar(self) -> object:
        if not self._grammar:
            return None
        grammar = llama_cpp.llama_sampler_init_grammar(self._vocab, self._grammar.encode(), b"root")
        if not grammar:
            raise ValueError("llama.cpp rejected the answer grammar (GBNF)")
        return grammar

    def _allowed(self, slot: _Slot, token: int) -> bool:
        """Whether the slot's grammar accepts ``token`` now (always, without a grammar)."""
        if slot.grammar is None:
            return True
        one = llama_cpp.llama_token_data(token, 0.0, 0.0)
        single = llama_cpp.llama_token_data_array(ctypes.pointer(one), 1, -1, False)
        llama_cpp.llama_sampler_apply(slot.grammar, ctypes.byref(single))
        return bool(np.isfinite(one.logit))

    def _sample(self, slot: _Slot, row: int, end_bias: float = 0.0) -> int:
        """Next token of ``slot``: sample unconstrained, and only when the grammar rejects that token
        resample with the grammar applied to the whole vocabulary (llama.cpp's own common sampler
        does the same). Same result as grammar-first sampling, at a fraction of its cost: a trained
        model's choice is almost always already well-formed.

        ``end_bias`` (``DecodingConfig.end_bias``) acts only where the model chose to end: the
        answer goes on with a new line instead when the grammar allows one and the model's logit
        for ``\\n`` beats its logit for ending plus ``end_bias``. Nothing else changes — a part
        is never lengthened because ending was made less likely (a logit bias on the end tokens
        would do that)."""
        token = llama_cpp.llama_sampler_sample(slot.sampler, self._ctx, row)
        if slot.grammar is not None and not self._allowed(slot, token):
            token = self._sample_with_grammar(slot, row)
        if end_bias and llama_cpp.llama_vocab_is_eog(self._vocab, token):
            newline = self._newline
            logits = self._logits(row)
            if (newline is not None and logits[newline] > logits[token] + end_bias
                    and self._allowed(slot, newline)):
                token = newline
        if slot.grammar is not None:
            llama_cpp.llama_sampler_accept(slot.grammar, token)
        return token

    def _sample_with_grammar(self, slot: _Slot, row: int) -> int:
        cand = self._candidates
        cand["logit"] = self._logits(row)
        cand["id"] = np.arange(self.n_vocab, dtype=np.int32)  # samplers may reorder in place
        full = llama_cpp.llama_token_data_array(
            cand.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)), self.n_vocab, -1, False)
        llama_cpp.llama_sampler_apply(slot.grammar, ctypes.byref(full))
        llama_cpp.llama_sampler_apply(slot.sampler, ctypes.byref(full))
        return full.data[full.selected].id

    def _logits(self, row: int) -> np.ndarray:
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._ctx, row), shape=(self.n_vocab,))

    def _logprob(self, row: int, token: int) -> float:
        logits = self._logits(row)
        peak = float(logits.max())
        return float(logits[token]) - peak - float(np.log(np.exp(logits - peak).sum()))

    # -- decoding -----------------------------------------------------------------------------
    def _decode(self, items: list[tuple[int, int, int, bool]]) -> None:
        """Decode ``(token, pos, seq_id, want_logits)`` rows in one ``llama_decode`` call."""
        if len(items) > self.n_batch:  # pragma: no cover - admission keeps batches in bounds
            raise RuntimeError(f"batch of {len(items)} tokens exceeds n_batch={self.n_batch}")
        b = self._batch
        for i, (tok, pos, seq, logits) in enumerate(items):
            b.token[i] = tok
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        b.n_tokens = len(items)
        rc = llama_cpp.llama_decode(self._ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc} (KV cache full?)")

    def share_prefix(self, text: str) -> None:
        """Evaluate ``text``, the start every prompt shares, once into sequence 0. A prompt whose
        tokens begin with its tokens gets them copied into its own sequence instead of
        recomputed; any other prompt is decoded whole."""
        llama_cpp.llama_memory_seq_rm(self._mem, _PREFIX_SEQ, -1, -1)
        self._prefix = self.tokenize(text)
        for start in range(0, len(self._prefix), self.n_batch):
            chunk = self._prefix[start:start + self.n_batch]
            self._decode([(t, start + p, _PREFIX_SEQ, False) for p, t in enumerate(chunk)])

    def generate(self, prompts: Sequence[str], decoding: DecodingConfig,
                 stop: Sequence[str] = ()) -> list[Generation]:
        """The answer to each prompt, in order. An answer ends at an end-of-generation token, at
        ``decoding.max_tokens``, where it starts repeating a line (:func:`repeats_a_line`), or
        at the first of the ``stop`` texts (not part of its text)."""
        request = _Request.of(prompts, decoding, stop)
        slots = [_Slot(seq_id=i + 1) for i in range(self.n_parallel)]
        try:
            while request.queue or any(s.busy for s in slots):
                self._admit(request, slots)
                rows = self._next_rows(slots)
                if not rows:
                    continue
                self._decode(rows)
                self._extend_answers(request, slots)
        except BaseException:
            for slot in slots:
                if slot.busy:
                    self._finish(request, slot)
            raise
        return request.results  # type: ignore[return-value]

    def _admit(self, request: _Request, slots: list[_Slot]) -> None:
        """Start the next queued prompts in free slots while the batch has room for their
        tokens and the KV cache for their cells (a prompt too long for ``n_ctx`` ends at once,
        with no answer)."""
        budget = self.n_batch - sum(len(s.pending) for s in slots if s.busy)
        free_cells = self.kv_cells - len(self._prefix) - sum(s.reserved for s in slots if s.busy)
        for slot in slots:
            if slot.busy or not request.queue:
                continue
            index = request.queue[0]
            tokens = request.tokens(index, self.tokenize)
            shared = len(self._prefix) if tokens[:len(self._prefix)] == self._prefix else 0
            suffix = tokens[shared:]
            if len(suffix) > budget and budget < self.n_batch:
                break  # admitted at a later step, when the batch has room
            too_long = len(tokens) + 1 > self.n_ctx_seq or not suffix
            reserve = min(len(suffix) + request.decoding.max_tokens, self.n_ctx_seq - shared)
            if not too_long and reserve > free_cells and any(s.busy for s in slots):
                break  # admitted when running sentences have freed their cells
            request.queue.popleft()
            del request.tokenized[index]
            slot.index, slot.prompt_tokens, slot.shared_tokens = index, len(tokens), shared
            slot.pieces, slot.logprobs, slot.text = [], [], bytearray()
            if too_long:
                self._finish(request, slot)
                continue
            self._start(slot, request.decoding, shared, suffix, reserve)
            free_cells -= reserve
            budget -= len(suffix)

    def _start(self, slot: _Slot, decoding: DecodingConfig, shared: int, suffix: list[int],
               reserve: int) -> None:
        if shared:
            llama_cpp.llama_memory_seq_cp(self._mem, _PREFIX_SEQ, slot.seq_id, -1, -1)
        slot.pos = shared
        slot.reserved = reserve
        slot.pending = suffix
        slot.sampler = self._new_sampler(decoding)
        slot.grammar = self._new_grammar()

    def _next_rows(self, slots: list[_Slot]) -> list[tuple[int, int, int, bool]]:
        """The rows of the next decode: each busy slot's pending tokens, up to ``n_batch`` in all
        (a suffix longer than that is fed over several steps); logits for a slot's last one."""
        rows: list[tuple[int, int, int, bool]] = []
        for slot in slots:
            take = slot.pending[:self.n_batch - len(rows)] if slot.busy else []
            if not take:
                continue
            complete = len(take) == len(slot.pending)
            for j, tok in enumerate(take):
                rows.append((tok, slot.pos + j, slot.seq_id, complete and j == len(take) - 1))
            if complete:
                slot.batch_row = len(rows) - 1
            slot.pos += len(take)
            slot.pending = slot.pending[len(take):]
        return rows

    def _extend_answers(self, request: _Request, slots: list[_Slot]) -> None:
        """Sample the next token of every slot that got logits in the last decode; finish the
        answers that are over."""
        stop = request.stop_bytes
        for slot in slots:
            if not slot.busy or slot.batch_row < 0:
                continue
            row, slot.batch_row = slot.batch_row, -1
            token = self._sample(slot, row, request.decoding.end_bias)
            if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                self._finish(request, slot)
                continue
            slot.logprobs.append(self._logprob(row, token))
            piece = self._piece(token)
            slot.pieces.append(piece)
            slot.text += piece
            repeat = repeats_a_line(slot.text)
            if repeat >= 0:
                del slot.text[repeat:]
            if (repeat >= 0 or any(m in slot.text for m in stop)
                    or len(slot.pieces) >= request.decoding.max_tokens
                    or slot.pos + 1 >= self.n_ctx_seq):
                self._finish(request, slot)
                continue
            slot.pending = [token]

    def _finish(self, request: _Request, slot: _Slot) -> None:
        """Record the slot's answer (cut at the first stop text) and free the slot."""
        text = bytes(slot.text).decode("utf-8", errors="replace")
        for marker in request.stop:
            cut = text.find(marker)
            if cut >= 0:
                text = text[:cut]
        request.results[slot.index] = Generation(
            text=text, token_texts=[p.decode("utf-8", errors="ignore") for p in slot.pieces],
            token_logprobs=list(slot.logprobs), prompt_tokens=slot.prompt_tokens,
            shared_prompt_tokens=slot.shared_tokens)
        for sampler in (slot.sampler, slot.grammar):
            if sampler is not None:
                llama_cpp.llama_sampler_free(sampler)
        slot.sampler = slot.grammar = None
        slot.index = -1
        llama_cpp.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)

    def close(self) -> None:
        if getattr(self, "_batch", None) is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self._adapter:
            llama_cpp.llama_adapter_lora_free(self._adapter)
            self._adapter = None
        if self._ctx:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:  # pragma: no cover
        try:
            self.close()
        except Exception:
            pass

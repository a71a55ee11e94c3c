"""Private llama.cpp backend: continuous batching over llama.cpp's public C API.

Several prompts are decoded together, each in its own KV-cache sequence, in one ``llama_decode``
call per step; a slot whose answer is complete is refilled with the next prompt at once. The
prompt prefix all prompts share (the instruction, :func:`ptoie.extract.prompt.shared_prefix`) is evaluated once into sequence 0 and
copied (not recomputed) into every slot: with a unified KV cache the copy shares cells.

The KV cache is sized for the sentences in flight, not for ``n_parallel`` worst cases: a sentence
is admitted only when the cells it may need (its prompt suffix plus ``max_tokens``, at most
``n_ctx``) fit beside those reserved by the running ones. The cache holds
``max(n_ctx, n_parallel * KV_CELLS_PER_SLOT)`` cells, so one sentence of ``n_ctx`` tokens always
fits, and typical ones run ``n_parallel`` at a time.
"""

from __future__ import annotations

import ctypes
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import llama_cpp
import numpy as np

from ptoie.extract.prompt import ChatFormat, chat_format_for, shared_prefix

if TYPE_CHECKING:  # pragma: no cover
    from ptoie.extract.extractor import Generation, SamplingSettings

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
    batch_row: int = -1          # row of this slot's logits in the last decode
    reserved: int = 0            # KV cells this slot may still fill (suffix + answer budget)


def _repeats_a_line(text: bytes | bytearray) -> int:
    """Where the answer must stop because it began writing a line it already holds, or -1.

    A model that writes a line again has nothing new to say (the parser would drop the copy), so
    the answer stops instead of repeating itself up to ``max_tokens``: at the newline that ends a
    copy of an earlier line (returns ``len(text)``: keep it all), or as soon as the line being
    written has the arg1, the relation and the first word of arg2 of an earlier line and is still
    a prefix of it (returns the start of that line: the copy is dropped unfinished). A line that
    goes on differently (``eram | católicos`` after ``eram | cristãos``) is never cut.
    """
    lines = bytes(text).split(b"\n")
    done = [line.strip() for line in lines[:-1]]
    if not done:
        return -1
    current = lines[-1].lstrip()
    if not current:  # a line just ended
        return len(text) if done[-1] and done[-1] in done[:-1] else -1
    parts = current.split(b" | ")
    if len(parts) == 3 and b" " in parts[2].lstrip() and any(line.startswith(current) for line in done):
        return len(text) - len(lines[-1])
    return -1


class LlamaBackend:
    def __init__(self, model_path: Path, *, lora_path: Path | None, n_ctx: int, n_threads: int,
                 n_gpu_layers: int, n_parallel: int, n_batch: int, grammar: str | None, verbose: bool) -> None:
        _init_backend(verbose)
        self._model = self._ctx = self._adapter = None
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = n_gpu_layers
        self._model = llama_cpp.llama_model_load_from_file(str(model_path).encode(), mparams)
        if not self._model:
            raise ValueError("llama_model_load_from_file failed (corrupt or unsupported GGUF)")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self.chat_format: ChatFormat = chat_format_for(self._meta("general.architecture"))
        """The turn markup of this model's family (from the GGUF's ``general.architecture``)."""
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        newline = self.tokenize("\n")
        self._newline = newline[0] if len(newline) == 1 else None
        """The vocabulary's token for a lone newline (``end_bias``); None when it has none."""

        self.n_parallel = n_parallel
        self.n_ctx_seq = n_ctx
        self.n_batch = n_batch
        self.kv_cells = max(n_ctx, n_parallel * KV_CELLS_PER_SLOT)
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = self.kv_cells
        cparams.n_batch = self.n_batch
        cparams.n_ubatch = self.n_batch
        cparams.n_seq_max = n_parallel + 1
        cparams.kv_unified = True
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        cparams.no_perf = True
        self._ctx = llama_cpp.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            self.close()
            raise ValueError("llama_init_from_model failed (context too large for memory?)")
        if lora_path is not None:
            self._adapter = llama_cpp.llama_adapter_lora_init(self._model, str(lora_path).encode())
            if not self._adapter:
                self.close()
                raise ValueError(f"llama_adapter_lora_init failed for {lora_path}")
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._adapter)
            scales = (ctypes.c_float * 1)(1.0)
            if llama_cpp.llama_set_adapters_lora(self._ctx, adapters, 1, scales):
                self.close()
                raise ValueError(f"llama_set_adapters_lora failed for {lora_path}")
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self._grammar = grammar
        # Candidate buffer (llama_token_data layout) for the rare steps that need the full grammar pass.
        self._candidates = np.zeros(self.n_vocab, dtype=np.dtype(
            [("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True))
        self._candidates["id"] = np.arange(self.n_vocab, dtype=np.int32)
        self._prefix: list[int] = []
        self._piece_buf = ctypes.create_string_buffer(256)

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
    def _new_sampler(self, s: "SamplingSettings") -> object:
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

        ``end_bias`` (``SamplingSettings.end_bias``) acts only where the model chose to end: the
        answer goes on with a new line instead when the grammar allows one and the model's logit
        for ``\\n`` beats its logit for ending plus ``end_bias``. Nothing else changes — a part
        is never lengthened because ending was made less likely (a logit bias on the end tokens
        would do that)."""
        token = llama_cpp.llama_sampler_sample(slot.sampler, self._ctx, row)
        if slot.grammar is not None and not self._allowed(slot, token):
            cand = self._candidates
            cand["logit"] = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._ctx, row),
                                                  shape=(self.n_vocab,))
            cand["id"] = np.arange(self.n_vocab, dtype=np.int32)  # samplers may reorder in place
            full = llama_cpp.llama_token_data_array(
                cand.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)), self.n_vocab, -1, False)
            llama_cpp.llama_sampler_apply(slot.grammar, ctypes.byref(full))
            llama_cpp.llama_sampler_apply(slot.sampler, ctypes.byref(full))
            token = full.data[full.selected].id
        if end_bias and llama_cpp.llama_vocab_is_eog(self._vocab, token):
            newline = self._newline
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._ctx, row),
                                           shape=(self.n_vocab,))
            if (newline is not None and logits[newline] > logits[token] + end_bias
                    and self._allowed(slot, newline)):
                token = newline
        if slot.grammar is not None:
            llama_cpp.llama_sampler_accept(slot.grammar, token)
        return token

    def _logprob(self, row: int, token: int) -> float:
        ptr = llama_cpp.llama_get_logits_ith(self._ctx, row)
        logits = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))
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

    def _ensure_prefix(self, prompt_tokens: list[int]) -> None:
        """Evaluate the prefix every prompt shares (the instruction) into sequence 0 once.

        The prefix is the tokens of :func:`ptoie.extract.prompt.shared_prefix` where the prompt's own
        tokens start with them (a prompt that does not is decoded whole, unshared)."""
        if self._prefix:
            return
        prefix = self.tokenize(shared_prefix(self.chat_format))
        if prompt_tokens[:len(prefix)] == prefix and len(prefix) < len(prompt_tokens):
            self._prefix = prefix
        if self._prefix:
            for start in range(0, len(self._prefix), self.n_batch):
                chunk = self._prefix[start:start + self.n_batch]
                self._decode([(t, start + p, _PREFIX_SEQ, False) for p, t in enumerate(chunk)])

    def prompt_eval(self, prompts: Sequence[str]) -> tuple[int, float]:
        """Evaluate only the non-shared part of each prompt (no sampling), ``n_parallel`` prompts per
        ``llama_decode`` as :meth:`generate` admits them, and return ``(tokens, seconds)``.

        The throughput reference of ``bench/throughput.py``: the rate at which this model processes
        tokens in long batches, which generation can approach but not beat."""
        import time

        token_lists = [self.tokenize(p) for p in prompts]
        if token_lists:
            self._ensure_prefix(token_lists[0])
        suffixes = [t[len(self._prefix):] if t[:len(self._prefix)] == self._prefix else t
                    for t in token_lists]
        n_tokens, seconds = 0, 0.0
        for start in range(0, len(suffixes), self.n_parallel):
            group = [s for s in suffixes[start:start + self.n_parallel] if s]
            rows: list[tuple[int, int, int, bool]] = []
            began = time.perf_counter()
            for i, suffix in enumerate(group):
                seq = i + 1
                if self._prefix:
                    llama_cpp.llama_memory_seq_cp(self._mem, _PREFIX_SEQ, seq, -1, -1)
                for j, tok in enumerate(suffix):
                    if len(rows) == self.n_batch:
                        self._decode(rows)
                        rows = []
                    rows.append((tok, len(self._prefix) + j, seq, j == len(suffix) - 1))
            if rows:
                self._decode(rows)
            seconds += time.perf_counter() - began
            n_tokens += sum(len(s) for s in group)
            for i in range(len(group)):
                llama_cpp.llama_memory_seq_rm(self._mem, i + 1, -1, -1)
        return n_tokens, seconds

    def generate(self, prompts: Sequence[str], sampling: "SamplingSettings") -> list["Generation"]:
        from ptoie.extract.extractor import Generation

        results: list[Generation | None] = [None] * len(prompts)
        queue = deque(range(len(prompts)))
        tokenized: dict[int, list[int]] = {}
        slots = [_Slot(seq_id=i + 1) for i in range(self.n_parallel)]
        max_new = sampling.max_tokens
        stop_texts = self.chat_format.stop_texts
        stop_markers = tuple(m.encode() for m in stop_texts)

        def finish(slot: _Slot) -> None:
            text = bytes(slot.text).decode("utf-8", errors="replace")
            for marker in stop_texts:
                cut = text.find(marker)
                if cut >= 0:
                    text = text[:cut]
            results[slot.index] = Generation(
                text=text,
                token_texts=[p.decode("utf-8", errors="ignore") for p in slot.pieces],
                token_logprobs=list(slot.logprobs), prompt_tokens=slot.prompt_tokens)
            for sampler in (slot.sampler, slot.grammar):
                if sampler is not None:
                    llama_cpp.llama_sampler_free(sampler)
            slot.sampler = slot.grammar = None
            slot.index = -1
            llama_cpp.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)

        try:
            while queue or any(s.index >= 0 for s in slots):
                budget = self.n_batch - sum(len(s.pending) for s in slots if s.index >= 0)
                free_cells = self.kv_cells - len(self._prefix) - sum(s.reserved for s in slots if s.index >= 0)
                for slot in slots:  # refill free slots
                    if slot.index >= 0 or not queue:
                        continue
                    idx = queue[0]
                    if idx not in tokenized:
                        tokenized[idx] = self.tokenize(prompts[idx])
                    tokens = tokenized[idx]
                    self._ensure_prefix(tokens)
                    shared = len(self._prefix) if tokens[:len(self._prefix)] == self._prefix else 0
                    suffix = tokens[shared:]
                    if len(suffix) > budget and budget < self.n_batch:
                        break  # admitted at a later step, when the batch has room
                    too_long = len(tokens) + 1 > self.n_ctx_seq or not suffix
                    reserve = min(len(suffix) + max_new, self.n_ctx_seq - shared)
                    if not too_long and reserve > free_cells and any(s.index >= 0 for s in slots):
                        break  # admitted when running sentences have freed their cells
                    queue.popleft()
                    del tokenized[idx]
                    slot.index, slot.prompt_tokens = idx, len(tokens)
                    slot.pieces, slot.logprobs, slot.text = [], [], bytearray()
                    if too_long:
                        finish(slot)  # too long for the context: no answer
                        continue
                    if shared:
                        llama_cpp.llama_memory_seq_cp(self._mem, _PREFIX_SEQ, slot.seq_id, -1, -1)
                    slot.pos = shared
                    slot.reserved = reserve
                    free_cells -= reserve
                    slot.pending = suffix
                    slot.sampler = self._new_sampler(sampling)
                    slot.grammar = self._new_grammar()
                    budget -= len(suffix)
                rows = []
                for slot in slots:  # a suffix longer than n_batch is fed over several steps
                    take = slot.pending[:self.n_batch - len(rows)] if slot.index >= 0 else []
                    if not take:
                        continue
                    complete = len(take) == len(slot.pending)
                    for j, tok in enumerate(take):
                        rows.append((tok, slot.pos + j, slot.seq_id, complete and j == len(take) - 1))
                    if complete:
                        slot.batch_row = len(rows) - 1
                    slot.pos += len(take)
                    slot.pending = slot.pending[len(take):]
                if not rows:
                    continue
                self._decode(rows)
                for slot in slots:
                    if slot.index < 0 or slot.batch_row < 0:
                        continue
                    row = slot.batch_row
                    slot.batch_row = -1
                    token = self._sample(slot, row, sampling.end_bias)
                    slot.logprobs.append(self._logprob(row, token))
                    piece = self._piece(token)
                    if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                        slot.logprobs.pop()
                        finish(slot)
                        continue
                    slot.pieces.append(piece)
                    slot.text += piece
                    repeat = _repeats_a_line(slot.text)
                    if repeat >= 0:
                        del slot.text[repeat:]
                    if (repeat >= 0 or any(m in slot.text for m in stop_markers) or len(slot.pieces) >= max_new
                            or slot.pos + 1 >= self.n_ctx_seq):
                        finish(slot)
                        continue
                    slot.pending = [token]
        except BaseException:
            for slot in slots:
                if slot.index >= 0:
                    finish(slot)
            raise
        return results  # type: ignore[return-value]

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

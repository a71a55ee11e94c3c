"""What the backend returns for one prompt (:class:`Generation`), the confidence of each answer
line read from it (:func:`line_confidences`), and where an answer that repeats itself stops
(:func:`repeats_a_line`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class Generation:
    """Backend output for one prompt: the text and, per generated token, its text and log-prob."""

    text: str
    """The answer, up to (without) the first stop text."""
    token_texts: list[str] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    shared_prompt_tokens: int = 0
    """Tokens of the prompt that came from the shared prefix: evaluated once, not per prompt."""


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


def repeats_a_line(text: bytes | bytearray) -> int:
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

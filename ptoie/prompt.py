"""THE conversation format of ptoie: ChatML, used verbatim by training and by inference.

A conversation is three messages:

* system: a short instruction in Portuguese (:data:`SYSTEM_PROMPT`);
* user: the sentence, as is;
* assistant: one triple per line, ``sujeito | relação | objeto``, in the order the model found
  them, or the single line :data:`NO_TRIPLE` when the sentence holds no triple.

:func:`render_prompt` gives the text the model continues at inference; :func:`render_example`
gives the same text followed by the answer and the end-of-turn marker, for training. Both go
through :func:`render_chatml`, so the two can never drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

SYSTEM_PROMPT = (
    "Extraia as triplas (sujeito | relação | objeto) da frase em português, "
    "uma por linha. Se não houver nenhuma, responda: nenhuma"
)
SEPARATOR = " | "
NO_TRIPLE = "nenhuma"

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

Message = dict[str, str]


def clean_part(text: str) -> str:
    """A triple part as it may appear in an answer line: one line, no separator, single spaces."""
    return " ".join(text.replace("|", "/").split())


def format_answer(triples: Iterable[Sequence[str]]) -> str:
    """The assistant message for ``triples`` (each ``(arg1, rel, arg2)``)."""
    lines = []
    for triple in triples:
        parts = [clean_part(p) for p in triple[:3]]
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"a triple needs three non-empty parts, got {tuple(triple)!r}")
        lines.append(SEPARATOR.join(parts))
    return "\n".join(lines) if lines else NO_TRIPLE


def build_messages(sentence: str, triples: Iterable[Sequence[str]] | None = None) -> list[Message]:
    """System + user messages for ``sentence``; with ``triples``, the assistant answer too."""
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": " ".join(sentence.split())},
    ]
    if triples is not None:
        messages.append({"role": "assistant", "content": format_answer(triples)})
    return messages


def render_chatml(messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
    """ChatML text of ``messages``; with ``add_generation_prompt`` it ends with an open assistant turn."""
    text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    if add_generation_prompt:
        text += f"{IM_START}assistant\n"
    return text


def render_prompt(sentence: str) -> str:
    """The exact text the extractor feeds the model for ``sentence``."""
    return render_chatml(build_messages(sentence), add_generation_prompt=True)


def render_example(sentence: str, triples: Iterable[Sequence[str]]) -> tuple[str, str]:
    """``(prompt, completion)`` for training: loss goes on ``completion`` only.

    ``prompt + completion`` equals ``render_chatml(build_messages(sentence, triples))`` minus its
    final newline; the completion ends with the end-of-turn marker the model must learn to emit.
    """
    prompt = render_prompt(sentence)
    completion = format_answer(triples) + IM_END
    return prompt, completion


STOP_SEQUENCES = (IM_END, IM_START)

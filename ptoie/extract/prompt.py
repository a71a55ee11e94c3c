"""THE conversation format of ptoie, used verbatim by training and by inference.

A conversation is three messages:

* system: a short instruction in Portuguese (:data:`SYSTEM_PROMPT`);
* user: the sentence, as is;
* assistant: one triple per line, ``sujeito | relação | objeto``, in the order the model found
  them, or the single line :data:`NO_TRIPLE` when the sentence holds no triple.

The messages are rendered in the turn markup of the base model (:class:`ChatFormat`): ChatML
(``<|im_start|>`` … ``<|im_end|>``, SmolLM2 and Qwen2) or Gemma's (``<start_of_turn>`` …
``<end_of_turn>``, which has no system role: the instruction opens the user turn). Either way the
answer ends on ONE token of the base's vocabulary, the end-of-turn marker, which the answer grammar
and the batching backend stop on. The answer text itself is the same for every base.

:func:`render_prompt` gives the text the model continues at inference; :func:`render_example`
gives the same text followed by the answer and the end-of-turn marker, for training. Both go
through :func:`render`, so the two can never drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

SYSTEM_PROMPT = (
    "Extraia as triplas (sujeito | relação | objeto) da frase em português, "
    "uma por linha. Se não houver nenhuma, responda: nenhuma"
)
SEPARATOR = " | "
NO_TRIPLE = "nenhuma"

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class ChatFormat:
    """The turn markup of one family of base models."""

    name: Literal["chatml", "gemma"]
    """``chatml``: SmolLM2, Qwen2 and other ChatML models; ``gemma``: Gemma 2 and 3."""
    begin: str
    """Text before the first turn (Gemma's ``<bos>``; ChatML models start without one)."""
    turn_start: str
    """Opens a turn; followed by the role and a newline."""
    turn_end: str
    """Closes a turn; a single special token of the base's vocabulary."""
    assistant_role: str
    """The role name of the model's turn (``assistant`` / ``model``)."""
    system_role: bool
    """Whether the format has a system turn; without one the instruction opens the user turn."""

    @property
    def stop_texts(self) -> tuple[str, str]:
        """Texts at which an answer is over (its end-of-turn, or the start of another turn)."""
        return (self.turn_end, self.turn_start)


CHATML = ChatFormat("chatml", begin="", turn_start=IM_START, turn_end=IM_END,
                    assistant_role="assistant", system_role=True)
GEMMA = ChatFormat("gemma", begin="<bos>", turn_start="<start_of_turn>", turn_end="<end_of_turn>",
                   assistant_role="model", system_role=False)
CHAT_FORMATS = {f.name: f for f in (CHATML, GEMMA)}
_GEMMA_ARCHITECTURES = ("gemma", "gemma2", "gemma3", "gemma3_text")


def chat_format_for(architecture: str | None) -> ChatFormat:
    """The format of a base model, from its llama.cpp ``general.architecture`` or transformers
    ``model_type`` (``gemma3``, ``gemma3_text`` → :data:`GEMMA`; anything else → :data:`CHATML`)."""
    return GEMMA if (architecture or "").lower() in _GEMMA_ARCHITECTURES else CHATML


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


def _turns(messages: Sequence[Message], fmt: ChatFormat) -> list[tuple[str, str]]:
    """``(role, content)`` turns of ``messages`` in ``fmt``: without a system role, the system
    message opens the next user turn, separated by a blank line."""
    turns: list[tuple[str, str]] = []
    pending = ""
    for m in messages:
        role, content = m["role"], m["content"]
        if role == "system" and not fmt.system_role:
            pending = content + "\n\n"
            continue
        if role == "user":
            content, pending = pending + content, ""
        turns.append((fmt.assistant_role if role == "assistant" else role, content))
    return turns


def render(messages: Sequence[Message], *, add_generation_prompt: bool, fmt: ChatFormat = CHATML) -> str:
    """Text of ``messages`` in ``fmt``; with ``add_generation_prompt`` it ends with an open model turn."""
    text = fmt.begin + "".join(f"{fmt.turn_start}{role}\n{content}{fmt.turn_end}\n"
                               for role, content in _turns(messages, fmt))
    if add_generation_prompt:
        text += f"{fmt.turn_start}{fmt.assistant_role}\n"
    return text


def render_chatml(messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
    """ChatML text of ``messages``; with ``add_generation_prompt`` it ends with an open assistant turn."""
    return render(messages, add_generation_prompt=add_generation_prompt, fmt=CHATML)


def render_prompt(sentence: str, fmt: ChatFormat = CHATML) -> str:
    """The exact text the extractor feeds a model of format ``fmt`` for ``sentence``."""
    return render(build_messages(sentence), add_generation_prompt=True, fmt=fmt)


def shared_prefix(fmt: ChatFormat = CHATML) -> str:
    """The text every prompt of ``fmt`` starts with (the instruction), evaluated once by the backend."""
    marker = "\x00"
    return render_prompt(marker, fmt).split(marker, 1)[0]


def render_example(sentence: str, triples: Iterable[Sequence[str]],
                   fmt: ChatFormat = CHATML) -> tuple[str, str]:
    """``(prompt, completion)`` for training: loss goes on ``completion`` only.

    ``prompt + completion`` equals ``render(build_messages(sentence, triples), fmt=fmt)`` minus its
    final newline; the completion ends with the end-of-turn marker the model must learn to emit.
    """
    prompt = render_prompt(sentence, fmt)
    completion = format_answer(triples) + fmt.turn_end
    return prompt, completion


STOP_TEXTS = tuple(text for fmt in CHAT_FORMATS.values() for text in fmt.stop_texts)
"""Every turn marker of every format: an answer is over where one of them begins."""

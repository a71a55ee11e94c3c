"""GBNF grammar of the answer format, derived from :mod:`ptoie.extract.prompt` (never written twice).

With the grammar on, llama.cpp only lets the model emit text that :func:`ptoie.extract.parser.parse_answer`
accepts: either the single line :data:`~ptoie.extract.prompt.NO_TRIPLE`, or one or more lines
``part SEPARATOR part SEPARATOR part``, where a part is one or more words separated by single
spaces and holds no separator character and no newline. The end-of-turn token is allowed only
where the answer is complete, so the only way an output can still fail to parse is being cut by
``max_tokens`` in the middle of a line (that line alone is then rejected).
"""

from __future__ import annotations

import json

from ptoie.extract.prompt import NO_TRIPLE, SEPARATOR


def _literal(text: str) -> str:
    """A GBNF string literal (JSON string escaping is a subset GBNF reads)."""
    return json.dumps(text, ensure_ascii=False)


def answer_grammar() -> str:
    """The GBNF text (root rule ``root``) of a well-formed assistant answer."""
    bar = SEPARATOR.strip()
    # A word: any run of characters except whitespace and the separator character.
    word_chars = f"[^{bar}\\n\\t\\r ]"
    return "\n".join([
        f"root ::= triple (\"\\n\" triple)* | {_literal(NO_TRIPLE)}",
        f"triple ::= part {_literal(SEPARATOR)} part {_literal(SEPARATOR)} part",
        "part ::= word (\" \" word)*",
        f"word ::= {word_chars}+",
        "",
    ])

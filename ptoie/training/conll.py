"""Readers for span-tagged CoNLL: TransAlign (BIOES, column 9) and PUD-100 (PropBank brackets, column 12).

Each block (lines up to a blank line) is ONE extraction of one sentence; a sentence with several
extractions appears as several blocks. :func:`read_conll` groups blocks by sentence (first-seen
order) and returns, per sentence, its tokens and its ``(arg1, rel, arg2)`` token spans.

Roles: ``ARG0`` = arg1 (subject), ``V`` = rel, ``ARG1`` = arg2 (object). A block whose tags do not
form one contiguous span per role, or that lacks ARG0, V or ARG1, is a *bad block*: it is counted
and reported with its file and line, never silently dropped. A block with no tag at all (all
``O``/``*``) marks a sentence without extraction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ROLE_TO_PART = {"ARG0": 0, "V": 1, "ARG1": 2}

Format = Literal["auto", "bioes", "brackets"]


@dataclass(slots=True)
class BadBlock:
    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


@dataclass(slots=True)
class TaggedSentence:
    """A sentence (as split tokens) with the token triples annotated for it."""

    tokens: list[str]
    extractions: list[tuple[list[str], list[str], list[str]]] = field(default_factory=list)
    source: str = ""
    line: int = 0


@dataclass(slots=True)
class ConllData:
    sentences: list[TaggedSentence]
    bad_blocks: list[BadBlock]
    n_blocks: int = 0
    """Blocks read, bad and empty ones included."""
    duplicate_blocks: int = 0
    """Blocks repeating an extraction already read for the same sentence (kept once)."""

    @property
    def n_extractions(self) -> int:
        return sum(len(s.extractions) for s in self.sentences)


def _blocks(path: Path) -> Iterator[tuple[int, list[list[str]]]]:
    """Blocks of ``path`` with their first line; a line that is not UTF-8 raises ValueError
    naming ``file:line``."""
    block: list[list[str]] = []
    start = 0
    with open(path, "rb") as fh:
        for lineno, data in enumerate(fh, 1):
            try:
                line = data.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not UTF-8 text ({exc.reason})") from None
            if not line.strip():
                if block:
                    yield start, block
                block = []
                continue
            if not block:
                start = lineno
            block.append(line.split("\t"))
    if block:
        yield start, block


def _detect_format(rows: list[list[str]]) -> tuple[int, int, Literal["bioes", "brackets"]]:
    """(token column, tag column, scheme) from the width of the rows."""
    width = len(rows[0])
    if width >= 12:
        return 3, 11, "brackets"
    if width >= 9:
        return 0, 8, "bioes"
    raise ValueError(f"unknown CoNLL layout: {width} columns (expected 10 for TransAlign, 13 for PUD)")


def _spans_bioes(tags: list[str]) -> tuple[dict[str, list[tuple[int, int]]], str | None]:
    spans: dict[str, list[tuple[int, int]]] = {}
    open_role: str | None = None
    open_start = 0
    for i, tag in enumerate(tags):
        if tag in ("O", "*", "-", ""):
            if open_role is not None:
                return spans, f"span {open_role} opened at token {open_start} is never closed"
            continue
        prefix, _, role = tag.partition("-")
        if prefix not in ("B", "I", "E", "S") or not role:
            return spans, f"unknown tag {tag!r} at token {i}"
        if prefix in ("B", "S"):
            if open_role is not None:
                return spans, f"span {open_role} opened at token {open_start} is never closed"
            if prefix == "S":
                spans.setdefault(role, []).append((i, i + 1))
            else:
                open_role, open_start = role, i
        else:
            if open_role != role:
                return spans, f"tag {tag!r} at token {i} continues no open {role} span"
            if prefix == "E":
                spans.setdefault(role, []).append((open_start, i + 1))
                open_role = None
    if open_role is not None:
        return spans, f"span {open_role} opened at token {open_start} is never closed"
    return spans, None


def _spans_brackets(tags: list[str]) -> tuple[dict[str, list[tuple[int, int]]], str | None]:
    spans: dict[str, list[tuple[int, int]]] = {}
    open_role: str | None = None
    open_start = 0
    for i, tag in enumerate(tags):
        if tag in ("O", "*", "-", ""):
            continue
        if tag.startswith("("):
            if open_role is not None:
                return spans, f"span {open_role} opened at token {open_start} is never closed"
            role = tag[1:].split("*")[0]
            if tag.endswith(")"):
                spans.setdefault(role, []).append((i, i + 1))
            else:
                open_role, open_start = role, i
        elif tag == "*)":
            if open_role is None:
                return spans, f"closing bracket at token {i} with no open span"
            spans.setdefault(open_role, []).append((open_start, i + 1))
            open_role = None
        else:
            return spans, f"unknown tag {tag!r} at token {i}"
    if open_role is not None:
        return spans, f"span {open_role} opened at token {open_start} is never closed"
    return spans, None


def read_conll(paths: Path | str | Iterable[Path | str]) -> ConllData:
    """Read one or more span-tagged CoNLL files (layout detected per block)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    by_key: dict[tuple[str, ...], TaggedSentence] = {}
    bad: list[BadBlock] = []
    n_blocks = duplicates = 0
    for path in map(Path, paths):
        for start, rows in _blocks(path):
            n_blocks += 1
            try:
                tok_col, tag_col, scheme = _detect_format(rows)
                tokens = [r[tok_col] for r in rows]
                tags = [r[tag_col].strip() for r in rows]
            except (ValueError, IndexError) as exc:
                bad.append(BadBlock(path.name, start, f"malformed rows: {exc}"))
                continue
            key = tuple(tokens)
            sentence = by_key.get(key)
            if sentence is None:
                sentence = by_key[key] = TaggedSentence(tokens=tokens, source=path.name, line=start)
            spans, error = (_spans_bioes if scheme == "bioes" else _spans_brackets)(tags)
            if error is None and not spans:
                continue  # a sentence without extraction
            if error is None:
                for role in ROLE_TO_PART:
                    if role not in spans:
                        error = f"missing {role} span"
                        break
                    if len(spans[role]) > 1:
                        error = f"role {role} has {len(spans[role])} separate spans"
                        break
            if error is not None:
                bad.append(BadBlock(path.name, start, error))
                continue
            parts = tuple(tokens[a:b] for a, b in (spans["ARG0"][0], spans["V"][0], spans["ARG1"][0]))
            if parts not in [tuple(e) for e in sentence.extractions]:
                sentence.extractions.append(parts)  # type: ignore[arg-type]
            else:
                duplicates += 1
    return ConllData(sentences=list(by_key.values()), bad_blocks=bad, n_blocks=n_blocks,
                     duplicate_blocks=duplicates)

"""Reporting: the errors file (one line on stderr and one JSON record per problem), the progress
bar, and the run's summary."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

from tqdm import tqdm

from ptoie.batch.config import ProgressMode
from ptoie.corpus import CorpusProblem
from ptoie.exit_codes import EXIT_OK, EXIT_SKIPPED

ErrorScope = Literal["file", "document", "sentence"]

# -- errors and progress ----------------------------------------------------------------------
class ErrorLog:
    """One line on stderr and one JSON record in the errors file per problem."""

    def __init__(self, path: Path | None, *, echo: Callable[[str], None]) -> None:
        self.path = path
        self._echo = echo
        self._fh: TextIO | None = None
        self.counts: dict[ErrorScope, int] = {"file": 0, "document": 0, "sentence": 0}
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "w", encoding="utf-8")

    def record(self, *, source: str, kind: str, message: str, skipped: ErrorScope,
               doc_id: str | None = None, text: str | None = None, tries: int | None = None
               ) -> None:
        self.counts[skipped] += 1
        self._echo(f"ptoie-batch: skipped {skipped} {source}: {message}")
        if self._fh is not None:
            record = {"source": source, "doc_id": doc_id, "kind": kind, "skipped": skipped,
                      "message": message}
            if tries is not None:
                record["tries"] = tries
            if text is not None:
                record["text"] = text[:200] + ("…" if len(text) > 200 else "")
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._fh.flush()

    def problem(self, problem: CorpusProblem) -> None:
        self.record(source=problem.source, kind=problem.kind, message=problem.message,
                    skipped=problem.scope)

    @property
    def skipped_inputs(self) -> int:
        return self.counts["file"] + self.counts["document"]

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class Progress:
    """tqdm bar over sentences, with documents and triples/s in the postfix."""

    def __init__(self, *, total_sentences: int, total_documents: int, mode: ProgressMode) -> None:
        enabled = mode == "always" or (mode == "auto" and sys.stderr.isatty())
        self.bar = tqdm(total=total_sentences, unit="sent", desc="ptoie-batch", file=sys.stderr,
                        disable=not enabled, dynamic_ncols=True, smoothing=0.1)
        self.total_documents = total_documents
        self.documents = self.triples = 0
        self._start = time.monotonic()

    def write(self, line: str) -> None:
        self.bar.write(line, file=sys.stderr)

    def update(self, *, documents: int, sentences: int, triples: int) -> None:
        self.documents += documents
        self.triples += triples
        rate = self.triples / max(time.monotonic() - self._start, 1e-9)
        self.bar.set_postfix_str(f"docs {self.documents}/{self.total_documents}, "
                                 f"triples {self.triples} ({rate:.1f}/s)", refresh=False)
        self.bar.update(sentences)

    def close(self) -> None:
        self.bar.close()


class IgnoredFiles:
    """Files of types the job does not read, found in the input folders: counted, the first few
    named."""

    SHOWN = 5

    def __init__(self) -> None:
        self.count = 0
        self.examples: list[str] = []

    def add(self, path: Path) -> None:
        self.count += 1
        if len(self.examples) < self.SHOWN:
            self.examples.append(str(path))

    def describe(self) -> str:
        """``3 files of types not read: a.md, b.pdf, c.docx`` (``, and N more`` past the first few)."""
        more = f", and {self.count - len(self.examples)} more" if self.count > len(self.examples) else ""
        files = "file" if self.count == 1 else "files"
        return f"{self.count} {files} of types not read: {', '.join(self.examples)}{more}"


# -- the summary ------------------------------------------------------------------------------
@dataclass(slots=True)
class BatchSummary:
    """What a run did; ``exit_code`` is the process status."""

    documents: int = 0
    """Documents of the corpus seen (finished before included)."""
    documents_resumed: int = 0
    """Already finished by an earlier run, skipped."""
    documents_processed: int = 0
    documents_skipped: int = 0
    """Documents or files skipped for bad input or failed extraction (see the errors file)."""
    sentences: int = 0
    """Sentences extracted in this run (planned, in a dry run)."""
    sentences_skipped: int = 0
    triples: int = 0
    """Triples extracted in this run."""
    triples_total: int = 0
    """Triples in the knowledge graph (all runs)."""
    seconds: float = 0.0
    dry_run: bool = False
    outputs: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    """Triples found in each written output (they must agree)."""
    skipped_outputs: dict[str, str] = field(default_factory=dict)
    """Outputs not written, with the reason (NetworkX outputs above ``--max-graph-triples``)."""
    workers: int = 0
    """Extractor workers of this run (0: nothing was extracted)."""
    worker_nodes: int = 0
    """Ray nodes the workers ran on."""
    commit_seconds: float = 0.0
    """Driver time spent storing finished batches (shards + manifest)."""
    ignored: str = ""
    """Files of types the job does not read, found in the input folders (count, first few)."""
    batch_retries: int = 0
    """Batches sent again because their worker died (Ray restarts it)."""

    @property
    def exit_code(self) -> int:
        return EXIT_SKIPPED if self.documents_skipped else EXIT_OK

    @property
    def sentences_per_second(self) -> float:
        return self.sentences / self.seconds if self.seconds > 0 else 0.0

    def render(self) -> str:
        head = "dry run (no extraction)" if self.dry_run else f"done in {self.seconds:.1f} s"
        lines = [
            f"ptoie-batch: {head}",
            f"  documents  {self.documents} in corpus: {self.documents_processed} "
            f"{'to process' if self.dry_run else 'processed'}, {self.documents_resumed} finished "
            f"earlier, {self.documents_skipped} skipped",
            f"  sentences  {self.sentences}"
            + ("" if self.dry_run else f" ({self.sentences_per_second:.2f}/s)")
            + f", {self.sentences_skipped} too long skipped",
        ]
        if not self.dry_run:
            lines.append(f"  triples    {self.triples} this run, {self.triples_total} in the graph")
        if self.ignored:
            lines.append(f"  ignored    {self.ignored}")
        if self.workers:
            lines.append(f"  workers    {self.workers} on {self.worker_nodes} Ray node(s); "
                         f"driver stored batches in {self.commit_seconds:.2f} s"
                         + (f"; {self.batch_retries} batch(es) retried after a worker died"
                            if self.batch_retries else ""))
        for name, path in self.outputs.items():
            count = f" ({self.counts[name]} triples)" if name in self.counts else ""
            lines.append(f"  {name:<10} {path}{count}")
        for name, reason in self.skipped_outputs.items():
            lines.append(f"  {name:<10} not written: {reason}")
        return "\n".join(lines)

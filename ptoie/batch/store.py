"""The durable store: the Parquet dataset folder (shards + manifest), its resume logic and the
lock that keeps a second job off it."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ptoie.schema import triple_schema
from ptoie.files import atomic_path, fsync_dir, write_parquet_shard
from ptoie.batch.config import BatchUsageError

# -- the durable store ------------------------------------------------------------------------
@dataclass(slots=True)
class ManifestEntry:
    """One finished document (a line of ``_manifest.jsonl``)."""

    doc_id: str
    source: str
    sha256: str
    shard: str | None
    """Parquet shard holding its triples; None when it has none."""
    sentences: int
    sentences_too_long: int
    triples: int
    rejected_lines: int
    outputs_sha256: str


class ShardStore:
    """The Parquet dataset folder: ``part-*.parquet`` shards, ``_manifest.jsonl``, ``_job.json``.

    Readers of the dataset (``pyarrow.dataset.dataset(folder)``) skip the ``_``-prefixed files.
    """

    MANIFEST = "_manifest.jsonl"
    SETTINGS = "_job.json"
    LAST_RUN = "_last_run.json"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.entries: dict[str, ManifestEntry] = {}
        self.removed_orphans: list[str] = []
        self._stale_rows: set[str] = set()
        """Shards that may hold rows of documents re-extracted later."""
        self._run = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"  # unique per run
        self._seq = 0

    @property
    def manifest_path(self) -> Path:
        return self.directory / self.MANIFEST

    def open(self, settings: dict[str, Any], *, overwrite: bool,
             added: dict[str, Any] | None = None) -> None:
        """Create or resume the store; refuse to resume with different extraction settings.
        ``added``: settings a stored ``_job.json`` may lack, with the value to read for each."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for path in self._own_files():
                path.unlink()
        settings_path = self.directory / self.SETTINGS
        if settings_path.exists():
            previous = {**(added or {}), **json.loads(settings_path.read_text(encoding="utf-8"))}
            changed = {k: (previous.get(k), v) for k, v in settings.items() if previous.get(k) != v}
            if changed:
                diff = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
                raise BatchUsageError(
                    f"{self.directory} holds a run with other extraction settings ({diff}); "
                    f"rerun with the same settings, use another --out, or pass --overwrite")
        else:
            with atomic_path(settings_path) as tmp:
                tmp.write_text(json.dumps(settings, indent=2, sort_keys=True), encoding="utf-8")
        self._load_manifest()
        self._remove_orphans()

    def _own_files(self) -> list[Path]:
        names = (self.MANIFEST, self.SETTINGS, self.LAST_RUN)
        return [p for p in self.directory.iterdir() if p.is_file() and (
            p.name in names or p.name.startswith("part-") or p.name.startswith(".part-"))]

    def _load_manifest(self) -> None:
        path = self.manifest_path
        if not path.exists():
            return
        data = path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # a kill during the append: drop the partial line
            with open(path, "rb+") as fh:
                fh.truncate(len(complete))
                os.fsync(fh.fileno())
        for number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
            try:
                entry = ManifestEntry(**json.loads(line))
            except (json.JSONDecodeError, TypeError) as exc:
                raise BatchUsageError(f"{path}:{number}: corrupt manifest line ({exc}); "
                                      f"pass --overwrite to start over") from None
            self._supersede(entry)  # a later line supersedes (changed document)

    def _remove_orphans(self) -> None:
        referenced = {e.shard for e in self.entries.values() if e.shard}
        for path in sorted(self.directory.iterdir()):
            orphan_shard = path.name.startswith("part-") and path.name not in referenced
            if orphan_shard or path.name.startswith(".part-"):
                path.unlink()
                self.removed_orphans.append(path.name)

    def is_done(self, doc_id: str, sha256: str) -> bool:
        entry = self.entries.get(doc_id)
        return entry is not None and entry.sha256 == sha256

    def commit(self, table: pa.Table, entries: list[ManifestEntry]) -> str | None:
        """Write the batch's shard, then its manifest lines (the commit point), durably."""
        shard = None
        if table.num_rows:
            self._seq += 1
            shard = f"part-{self._run}-{self._seq:06d}.parquet"
            write_parquet_shard(table, self.directory, shard)  # all or nothing (atomic_path)
        lines = "".join(json.dumps(asdict(e) | {"shard": shard}, ensure_ascii=False) + "\n"
                        for e in entries)
        try:
            self._append_manifest(lines.encode("utf-8"))
            fsync_dir(self.directory)
        except OSError:
            if shard is not None:  # never referenced: remove it now rather than at the next start
                (self.directory / shard).unlink(missing_ok=True)
            raise
        for entry in entries:
            entry.shard = shard
            self._supersede(entry)
        return shard

    def _append_manifest(self, data: bytes) -> None:
        """Append whole lines durably; on failure (a full disk) the manifest is cut back to the
        lines it had, so no partial line is left."""
        fd = os.open(self.manifest_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)

    def _supersede(self, entry: ManifestEntry) -> None:
        previous = self.entries.get(entry.doc_id)
        if previous is not None and previous.shard and previous.shard != entry.shard:
            self._stale_rows.add(previous.shard)
        self.entries[entry.doc_id] = entry

    def shards(self) -> dict[str, set[str]]:
        """Shard name -> the documents whose current triples it holds."""
        by_shard: dict[str, set[str]] = {}
        for entry in self.entries.values():
            if entry.shard:
                by_shard.setdefault(entry.shard, set()).add(entry.doc_id)
        return by_shard

    def current_shards(self) -> list[Path]:
        """The shards holding the current triples, in name order. Rows of documents re-extracted
        later (their content changed) are first pruned from the older shard, atomically; a shard
        left with no current document is deleted."""
        current = self.shards()
        paths = []
        for path in sorted(self.directory.glob("part-*.parquet")):
            if path.name not in current:
                path.unlink()  # every document it held was re-extracted into a newer shard
                continue
            if path.name in self._stale_rows:
                docs = pq.read_table(path, columns=["doc_id"]).column("doc_id")
                keep = pc.is_in(docs, value_set=pa.array(sorted(current[path.name])))
                if not pc.all(keep).as_py():
                    table = pq.read_table(path, schema=triple_schema())
                    write_parquet_shard(table.filter(keep), self.directory, path.name)
            paths.append(path)
        return paths

    def n_triples(self) -> int:
        return sum(e.triples for e in self.entries.values())


class OutputLock:
    """``<dataset>/_lock``: one job at a time on a Parquet dataset.

    An exclusive ``flock`` on the file, held for the job's life: the kernel releases it when the
    process ends, however it ends, so the lock of a job killed with ``kill -9`` never blocks its
    resume. The file names the holder (host, pid, start time) for the refusal message. (``flock``
    is per host on most network file systems: two jobs on two hosts sharing a dataset folder
    over NFS are not kept apart.)
    """

    NAME = "_lock"

    def __init__(self, directory: Path) -> None:
        self.path = directory / self.NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`BatchUsageError` naming the job that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            os.close(fd)
            try:
                who = json.loads(holder)
                desc = f"pid {who['pid']} on host {who['host']} (since {who['started']})"
            except (ValueError, KeyError, TypeError):
                desc = "another process"
            raise BatchUsageError(f"{self.path.parent} is in use by a running ptoie-batch, {desc}; "
                                  f"wait for it to finish or use another --out") from None
        holder = json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                             "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder, 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

"""What an offline W&B run has logged so far, read from its transaction log (``run-<id>.wandb``).

An offline run writes every record (history rows, summary updates, the exit code) to one
append-only file in the LevelDB log format, which ``wandb sync`` uploads later. The run flushes
it every ``x_transaction_log_flush_interval`` seconds (``WANDB__TRANSACTION_LOG_FLUSH_INTERVAL``)
and at its end, so a running run can be read while it trains: a record not yet complete at the
end of the file is left for the next read.

Format: a 7-byte file header (``:W&B``, magic 0xBEE1, version 0), then 32 KiB blocks of chunks,
each ``<crc32 of type byte and data, length, type>`` (7 bytes, little-endian) and its data; a
record (a ``wandb_internal_pb2.Record``) is one FULL chunk or FIRST, MIDDLE..., LAST; a block
tail shorter than a chunk header is zero padding.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32768
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class RunLog:
    """A run's history rows (``wandb.log`` calls, with ``_step``), its summary, who it is
    (``run``: id, project, group, sweep id) and, once it has ended, its exit code."""

    run: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None

    def rows_with(self, key: str) -> list[dict[str, Any]]:
        """The history rows that log ``key`` (W&B's sampled history of one metric)."""
        return [row for row in self.history if key in row]


def records(data: bytes) -> list[bytes]:
    """The complete records of a transaction log's bytes, in order; stops at the first chunk
    that is cut short or fails its checksum (the part still being written)."""
    if not data.startswith(HEADER[:4]):
        raise ValueError("not a W&B transaction log (no :W&B header)")
    out: list[bytes] = []
    pending = b""
    pos = len(HEADER)
    while pos + CHUNK_HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEADER:
            pos += left
            continue
        checksum, length, kind = struct.unpack("<IHB", data[pos : pos + CHUNK_HEADER])
        body = data[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        if len(body) < length or kind not in (FULL, FIRST, MIDDLE, LAST):
            break
        if zlib.crc32(body, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != checksum:
            break
        pos += CHUNK_HEADER + length
        if kind == FULL:
            out.append(body)
        elif kind == FIRST:
            pending = body
        else:
            pending += body
            if kind == LAST:
                out.append(pending)
                pending = b""
    return out


def _key(item: Any) -> str:
    return item.key or ".".join(item.nested_key)


def _value(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value


def read_run(path: Path) -> RunLog:
    """Parse the transaction log at ``path`` as far as it is written."""
    from wandb.proto import wandb_internal_pb2

    log = RunLog()
    for raw in records(Path(path).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            log.run = {
                "id": run.run_id,
                "project": run.project,
                "group": run.run_group,
                "sweep_id": run.sweep_id,
            }
        elif kind == "history":
            log.history.append({_key(i): _value(i.value_json) for i in record.history.item})
        elif kind == "summary":
            for item in record.summary.update:
                log.summary[_key(item)] = _value(item.value_json)
            for item in record.summary.remove:
                log.summary.pop(_key(item), None)
        elif kind == "exit":
            log.exit_code = record.exit.exit_code
    return log


def find_run_file(folder: Path, run_id: str) -> Path | None:
    """The transaction log of run ``run_id`` anywhere under ``folder`` (``latest-run`` links
    aside), or None while the run has not started."""
    name = f"run-{run_id}.wandb"
    found = [p for p in Path(folder).rglob(name) if p.parent.name != "latest-run"]
    return min(found, key=lambda p: len(p.parts)) if found else None


def finite(value: Any) -> bool:
    """A number W&B would plot (not a bool, NaN or infinity)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

"""A bounded on-disk spool of usage records, for at-least-once delivery to the operator.

Records are appended to segment files in one directory (the pod's `emptyDir`)
before they are sent, and leave the spool only when the operator has
acknowledged them; a reconnect, or a restart of the sidecar, sends again what
is left. The operator drops the duplicates this causes (records carry ids).

Format: segment files `<sequence>.usage`, append-only, each a run of frames
`[u32 length][u32 CRC-32 of the record][serialized UsageRecord]` (big-endian).
One segment is open for appends; when it reaches `segment_bytes` it is
fsynced and closed and the next one starts. A segment is deleted once every
record in it is acknowledged (the open one too: the next append starts a new
one). Nothing is fsynced per record.

Bounds: the segments together never exceed `max_bytes`; a record that would
not fit is dropped and counted (`dropped_full`). Acknowledged records of a
segment that still holds unacknowledged ones keep their bytes until the
whole segment goes.

Crash semantics: a process that dies (SIGKILL, OOM) loses nothing it
appended: the bytes are in the page cache. A node that crashes may lose what
was appended since the last rotation, and may leave a segment whose tail is
a partial, garbled or zero-filled frame. On `open` every segment is checked
frame by frame (length, CRC, no empty record); a segment is cut at its first
bad frame (the rest of the file is skipped, and counted once in `torn`), and
every earlier record is sent again.

The spool is thread-safe and blocking; the sidecar calls it off the event
loop (`asyncio.to_thread`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from sidelight_proto.v1 import usage_pb2

log = logging.getLogger(__name__)

FRAME = struct.Struct(">II")
SUFFIX = ".usage"
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_SEGMENT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Position:
    """A place in the spool: a segment's sequence number and a byte offset in it."""

    segment: int
    offset: int


@dataclass(frozen=True)
class Batch:
    """Records read from one segment, and the position right after the last of them."""

    records: list[usage_pb2.UsageRecord]
    end: Position


@dataclass
class _Segment:
    seq: int
    path: Path
    size: int
    acked: int = 0
    fd: int | None = None  # open for appends: the one active segment


class UsageSpool:
    """Segment files of usage records, kept until acknowledged; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = min(segment_bytes, max_bytes)
        self.dropped_full = 0  # records dropped because the spool was full
        self.dropped_error = 0  # records dropped because the disk refused them
        self.torn = 0  # segments cut at a bad frame when opened
        self._segments: list[_Segment] = []
        self._bytes = 0
        self._next_seq = 1
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """Bytes the segments take on disk."""
        return self._bytes

    def pending(self) -> bool:
        """Whether any record waits for an acknowledgement."""
        with self._lock:
            return any(s.acked < s.size for s in self._segments)

    def open(self) -> int:
        """Take over the segments a previous run left; how many records they hold."""
        self.directory.mkdir(parents=True, exist_ok=True)
        recovered = 0
        with self._lock:
            for path in sorted(self.directory.glob(f"*{SUFFIX}")):
                seq = int(path.stem) if path.stem.isdigit() else 0
                if seq <= 0:
                    continue
                self._next_seq = max(self._next_seq, seq + 1)
                count, size = self._recover(path)
                if size == 0:
                    path.unlink()
                    continue
                recovered += count
                self._segments.append(_Segment(seq, path, size))
                self._bytes += size
        if recovered:
            log.info("usage spool holds %d records from before, sending them again", recovered)
        return recovered

    def append(self, records: Sequence[usage_pb2.UsageRecord]) -> int:
        """Append what fits; count the rest in `dropped_full`. How many were appended."""
        frames: list[bytes] = []
        with self._lock:
            errors = self.dropped_error
            room = self.max_bytes - self._bytes
            for record in records:
                data = record.SerializeToString()
                if FRAME.size + len(data) > room:
                    self.dropped_full += 1
                    continue
                frames.append(FRAME.pack(len(data), zlib.crc32(data)) + data)
                room -= FRAME.size + len(data)
            if frames:
                self._write(frames)
            return len(frames) - (self.dropped_error - errors)

    def start(self) -> Position:
        """Where sending starts after a (re)connect: the first unacknowledged record."""
        with self._lock:
            if not self._segments:
                return Position(self._next_seq, 0)
            first = self._segments[0]
            return Position(first.seq, first.acked)

    def read(self, start: Position, max_records: int) -> Batch:
        """Up to `max_records` records from `start` on, from one segment; none: caught up."""
        with self._lock:
            for segment in self._segments:
                if segment.seq < start.segment:
                    continue
                offset = start.offset if segment.seq == start.segment else 0
                if offset < segment.size:
                    return self._read(segment, offset, max_records)
            return Batch([], start)

    def ack(self, end: Position) -> None:
        """Every record before `end` is acknowledged; delete the segments that are done."""
        with self._lock:
            for segment in list(self._segments):
                if segment.seq > end.segment:
                    break
                done = segment.size if segment.seq < end.segment else end.offset
                segment.acked = max(segment.acked, done)
                if segment.acked >= segment.size:
                    self._delete(segment)

    def close(self) -> None:
        """Fsync and close the open segment; the files stay for the next `open`."""
        with self._lock:
            for segment in self._segments:
                if segment.fd is not None:
                    self._seal(segment)

    def _write(self, frames: list[bytes]) -> None:
        """Append `frames`; a segment is sealed once the next frame would not fit in it."""
        while frames:
            segment = self._segments[-1] if self._segments else None
            if segment is None or segment.fd is None:
                segment = self._new_segment()
            if segment is None:
                self.dropped_error += len(frames)
                return
            count, used = 1, len(frames[0])  # a segment takes at least one frame
            while count < len(frames) and segment.size + used + len(frames[count]) <= (
                self.segment_bytes
            ):
                used += len(frames[count])
                count += 1
            if not self._write_chunk(segment, frames[:count], used):
                self.dropped_error += len(frames) - count
                return
            frames = frames[count:]
            if frames or segment.size >= self.segment_bytes:
                self._seal(segment)

    def _write_chunk(self, segment: _Segment, chunk: list[bytes], used: int) -> bool:
        """Write `chunk` at the end of `segment`; False (records counted, segment sealed) if not."""
        assert segment.fd is not None
        try:
            view = memoryview(b"".join(chunk))
            while view:
                view = view[os.write(segment.fd, view) :]
        except OSError as exc:
            log.warning("usage spool write failed, %d records dropped: %s", len(chunk), exc)
            self.dropped_error += len(chunk)
            with contextlib.suppress(OSError):  # else `open` cuts the segment there
                os.ftruncate(segment.fd, segment.size)
            self._seal(segment)
            return False
        segment.size += used
        self._bytes += used
        return True

    def _new_segment(self) -> _Segment | None:
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        path = self.directory / f"{seq:020d}{SUFFIX}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except OSError as exc:
            log.warning("usage spool cannot create %s: %s", path, exc)
            return None
        segment = _Segment(seq, path, 0, fd=fd)
        self._segments.append(segment)
        return segment

    def _seal(self, segment: _Segment) -> None:
        assert segment.fd is not None
        fd, segment.fd = segment.fd, None
        try:
            os.fsync(fd)
        except OSError as exc:
            log.warning("usage spool fsync of %s failed: %s", segment.path.name, exc)
        finally:
            os.close(fd)

    def _delete(self, segment: _Segment) -> None:
        if segment.fd is not None:
            os.close(segment.fd)
            segment.fd = None
        segment.path.unlink(missing_ok=True)
        self._segments.remove(segment)
        self._bytes -= segment.size

    def _read(self, segment: _Segment, offset: int, max_records: int) -> Batch:
        records: list[usage_pb2.UsageRecord] = []
        with segment.path.open("rb") as f:
            f.seek(offset)
            while offset < segment.size and len(records) < max_records:
                length, _crc = FRAME.unpack(f.read(FRAME.size))
                data = f.read(length)
                offset += FRAME.size + length
                try:
                    records.append(usage_pb2.UsageRecord.FromString(data))
                except DecodeError:  # the CRC matched when written: nothing to recover
                    log.warning("usage spool record at %s:%d unreadable", segment.path, offset)
        return Batch(records, Position(segment.seq, offset))

    def _recover(self, path: Path) -> tuple[int, int]:
        """(records, good bytes) of a segment from an earlier run; cut at a bad frame."""
        data = path.read_bytes()
        count = offset = 0
        while offset + FRAME.size <= len(data):
            length, crc = FRAME.unpack_from(data, offset)
            payload = data[offset + FRAME.size : offset + FRAME.size + length]
            if length == 0 or len(payload) < length or zlib.crc32(payload) != crc:
                break
            offset += FRAME.size + length
            count += 1
        if offset < len(data):
            self.torn += 1
            log.warning(
                "usage spool segment %s cut at byte %d of %d (a torn or garbled tail)",
                path.name,
                offset,
                len(data),
            )
            os.truncate(path, offset)
        return count, offset

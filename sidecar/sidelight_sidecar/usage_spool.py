"""A bounded on-disk spool of usage records, for at-least-once delivery to the operator.

Records are appended to segment files in one directory (the pod's `emptyDir`)
before they are sent, and leave the spool only when the operator has
acknowledged them; a reconnect, or a restart of the sidecar, sends again what
is left. The operator drops the duplicates this causes (records carry ids).

Format: segment files `<sequence>.usage`, append-only, each a run of frames
`0x0a <varint length> <serialized UsageRecord>`: the encoding of field 1 of
`UsageReport` (`records`), so any run of whole frames is a serialized
`UsageReport` and goes to the operator as it is, never parsed or serialized
again on the way (bench/usage_bench.py: that work, done for every record,
showed in the request path's p99). One segment is open for appends; when it
reaches `segment_bytes` it is fsynced and closed and the next one starts. A
segment is deleted once every record in it is acknowledged (the open one
too: the next append starts a new one). Nothing is fsynced per record.

Bounds: the segments together never exceed `max_bytes`; a record that would
not fit is dropped and counted (`dropped_full`). Acknowledged records of a
segment that still holds unacknowledged ones keep their bytes until the
whole segment goes.

Crash semantics: a process that dies (SIGKILL, OOM) loses nothing it
appended: the bytes are in the page cache. A node that crashes may lose what
was appended since the last rotation, and may leave a segment whose tail is
a partial, garbled or zero-filled frame. On `open` every segment is checked
frame by frame (the tag, a length that fits, a record that parses and has an
id); a segment is cut at its first bad frame (the rest of the file is
skipped, and counted once in `torn`), and every earlier record is sent
again.

The spool is thread-safe and blocking; the sidecar calls it off the event
loop (`asyncio.to_thread`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from sidelight_proto.v1 import control_plane_pb2, usage_pb2

log = logging.getLogger(__name__)

TAG = 0x0A  # UsageReport.records: field 1, length-delimited
MAX_RECORD_BYTES = 1 << 20
READ_BYTES = 256 * 1024
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
    """Whole frames from one segment (a serialized `UsageReport`), and where they end."""

    data: bytes
    count: int
    end: Position


def frame(record: usage_pb2.UsageRecord) -> bytes:
    """The spool's frame of `record`: `UsageReport.records` as it is encoded."""
    data = record.SerializeToString()
    return bytes((TAG, *_varint(len(data)))) + data


def frame_at(data: bytes, offset: int) -> int | None:
    """The end of the whole frame at `offset` in `data`, or None if there is none."""
    if offset >= len(data) or data[offset] != TAG:
        return None
    length = shift = 0
    pos = offset + 1
    while pos < len(data) and shift <= 28:
        byte = data[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            end = pos + length
            return end if 0 < length <= MAX_RECORD_BYTES and end <= len(data) else None
        shift += 7
    return None


def _varint(value: int) -> list[int]:
    out = []
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return out


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
                encoded = frame(record)
                if len(encoded) > room:
                    self.dropped_full += 1
                    continue
                frames.append(encoded)
                room -= len(encoded)
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
            for segment in list(self._segments):
                if segment.seq < start.segment:
                    continue
                offset = start.offset if segment.seq == start.segment else 0
                if offset >= segment.size:
                    continue
                batch = self._read(segment, offset, max_records)
                if batch is not None:
                    return batch
                self._cut(segment, offset)  # the file changed under the spool
            return Batch(b"", 0, start)

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

    def _read(self, segment: _Segment, offset: int, max_records: int) -> Batch | None:
        """Whole frames from `offset` (none there: None)."""
        size = min(segment.size - offset, READ_BYTES)
        with segment.path.open("rb") as f:
            f.seek(offset)
            data = f.read(size)
            if frame_at(data, 0) is None:  # one record longer than READ_BYTES
                data += f.read(segment.size - offset - size)
        end = count = 0
        while count < max_records and (after := frame_at(data, end)) is not None:
            end, count = after, count + 1
        if count == 0:
            return None
        return Batch(data[:end], count, Position(segment.seq, offset + end))

    def _cut(self, segment: _Segment, offset: int) -> None:
        """Drop what follows `offset` in `segment`: it is not whole frames."""
        self.torn += 1
        log.warning("usage spool segment %s cut at byte %d", segment.path.name, offset)
        if segment.fd is not None:
            self._seal(segment)
        with contextlib.suppress(OSError):
            os.truncate(segment.path, offset)
        self._bytes -= segment.size - offset
        segment.size = offset
        if segment.acked >= segment.size:
            self._delete(segment)

    def _recover(self, path: Path) -> tuple[int, int]:
        """(records, good bytes) of a segment from an earlier run; cut at a bad frame."""
        data = path.read_bytes()
        count = offset = 0
        while (end := frame_at(data, offset)) is not None and _is_record(data[offset:end]):
            offset, count = end, count + 1
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


def _is_record(encoded: bytes) -> bool:
    """Whether a frame holds a record (with an id): the check of what a crash left."""
    try:
        report = control_plane_pb2.UsageReport.FromString(encoded)
    except DecodeError:
        return False
    return len(report.records) == 1 and bool(report.records[0].id)

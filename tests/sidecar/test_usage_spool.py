"""The usage spool on a real directory: bounds, acknowledgements, restarts, torn tails."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sidelight_proto.v1 import control_plane_pb2, usage_pb2
from sidelight_sidecar.usage_spool import SUFFIX, Position, UsageSpool, frame


def record(n: int) -> usage_pb2.UsageRecord:
    """Records of one size (fixed-width id, two-byte varint, a double)."""
    return usage_pb2.UsageRecord(
        id=f"trace{n:04d}-span", requested_model="gpt-4o", input_tokens=1000 + n, cost_usd=1 + n
    )


FRAME_SIZE = len(frame(record(0)))


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}"))


def read_all(spool: UsageSpool, start: Position | None = None) -> tuple[list[str], Position]:
    """Every id from `start` (default: the first unacknowledged) on, in order."""
    position = spool.start() if start is None else start
    ids: list[str] = []
    while (batch := spool.read(position, 7)).count:
        report = control_plane_pb2.UsageReport.FromString(batch.data)  # frames are a report
        assert len(report.records) == batch.count
        ids += [r.id for r in report.records]
        position = batch.end
    return ids, position


def opened(directory: Path, **limits: int) -> UsageSpool:
    spool = UsageSpool(directory, **limits)
    spool.open()
    return spool


def test_records_are_read_in_order_and_deleted_once_acknowledged(tmp_path: Path) -> None:
    spool = opened(tmp_path, segment_bytes=FRAME_SIZE * 10)
    assert spool.append([record(n) for n in range(25)]) == 25
    assert spool.append([record(n) for n in range(25, 30)]) == 5
    assert [p.stat().st_size for p in segments(tmp_path)] == [FRAME_SIZE * 10] * 3
    ids, end = read_all(spool)
    assert ids == [record(n).id for n in range(30)]
    assert spool.pending()
    spool.ack(end)
    assert not spool.pending()
    assert spool.size == 0
    assert segments(tmp_path) == []
    assert spool.append([record(30)]) == 1  # a new segment after the last one
    assert read_all(spool, end)[0] == [record(30).id]


def test_a_partial_acknowledgement_keeps_the_rest(tmp_path: Path) -> None:
    spool = opened(tmp_path)
    spool.append([record(n) for n in range(10)])
    first = spool.read(spool.start(), 4)
    spool.ack(first.end)
    assert spool.start() == first.end
    assert read_all(spool)[0] == [record(n).id for n in range(4, 10)]


def test_a_full_spool_drops_and_counts(tmp_path: Path) -> None:
    size = FRAME_SIZE
    spool = opened(tmp_path, max_bytes=size * 5 + size // 2, segment_bytes=size * 2)
    assert spool.append([record(n) for n in range(8)]) == 5
    assert spool.dropped_full == 3
    assert spool.size == size * 5
    assert sum(p.stat().st_size for p in segments(tmp_path)) == size * 5
    _, end = read_all(spool)
    spool.ack(end)
    assert spool.append([record(8)]) == 1  # room again once acknowledged
    assert spool.dropped_full == 3


def test_a_restart_sends_everything_unacknowledged_again(tmp_path: Path) -> None:
    spool = opened(tmp_path, segment_bytes=FRAME_SIZE * 4)
    spool.append([record(n) for n in range(10)])
    spool.ack(spool.read(spool.start(), 6).end)  # 0-3 in a deleted segment, 4-5 not
    spool.close()
    again = UsageSpool(tmp_path)
    assert again.open() == 6  # the segment of 4-7, partly acknowledged, comes back whole
    assert read_all(again)[0] == [record(n).id for n in range(4, 10)]
    again.append([record(10)])
    assert read_all(again)[0][-1] == record(10).id


def test_a_torn_tail_is_cut_and_counted(tmp_path: Path) -> None:
    spool = opened(tmp_path)
    spool.append([record(n) for n in range(3)])
    spool.close()
    [path] = segments(tmp_path)
    whole = path.stat().st_size
    with path.open("ab") as f:  # the crash came in the middle of a frame
        f.write(frame(record(3))[:30])
    again = UsageSpool(tmp_path)
    assert again.open() == 3
    assert again.torn == 1
    assert path.stat().st_size == whole
    again.append([record(4)])
    assert read_all(again)[0] == [record(n).id for n in (0, 1, 2, 4)]


def test_a_zero_filled_or_garbled_tail_is_cut(tmp_path: Path) -> None:
    spool = opened(tmp_path, segment_bytes=FRAME_SIZE * 2)
    spool.append([record(n) for n in range(4)])
    spool.close()
    first, second = segments(tmp_path)
    with first.open("ab") as f:
        f.write(b"\0" * 64)  # the size grew, the data did not reach the disk
    with second.open("ab") as f:  # a whole frame, but not a record
        f.write(b"\x0a\x05" + b"\xff" * 5)
    again = UsageSpool(tmp_path)
    assert again.open() == 4
    assert again.torn == 2
    assert read_all(again)[0] == [record(n).id for n in range(4)]


def test_a_segment_cut_under_the_running_spool_is_read_up_to_the_cut(tmp_path: Path) -> None:
    spool = opened(tmp_path)
    spool.append([record(n) for n in range(3)])
    [path] = segments(tmp_path)
    os.truncate(path, FRAME_SIZE + 5)  # not by the spool
    ids, end = read_all(spool)
    assert ids == [record(0).id]
    assert (spool.torn, spool.size) == (1, FRAME_SIZE)
    spool.ack(end)
    assert not spool.pending()
    assert segments(tmp_path) == []


def test_a_disk_that_refuses_writes_drops_and_counts(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = opened(directory)
    shutil.rmtree(directory)
    assert spool.append([record(0), record(1)]) == 0
    assert spool.dropped_error == 2
    assert not spool.pending()
    directory.mkdir()
    spool.append([record(2)])
    assert read_all(spool)[0] == [record(2).id]


def test_files_that_are_not_segments_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "snapshot.pb").write_bytes(b"x")
    (tmp_path / f"notes{SUFFIX}").write_bytes(b"x")
    spool = opened(tmp_path)
    assert not spool.pending()
    assert (tmp_path / "snapshot.pb").exists()

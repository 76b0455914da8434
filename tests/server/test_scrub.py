"""Start-up does not rescan checkpointed segments; the background scrub that follows it finds a flipped byte there,
names file and offset in the log and INFO, and never delays serving."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from conftest import ServerProcess, start_respq, wait_until
from respq.storage.framing import HEAD_SIZE, OVERHEAD, SEGMENT_HEADER
from respq.storage.segments import SHARED_QID, queue_dir_name

SMALL = [b"m%07d" % i for i in range(100)]  # 8-byte values: record n starts at a computable offset
BULK = [b"b" * 1000] * 100


def persistence(server: ServerProcess) -> dict[str, object]:
    with redis.Redis(port=server.port, socket_timeout=10) as client:
        return client.info("persistence")


def fill_and_stop(data_dir: Path, bulk_pushes: int) -> Path:
    """Queue q (small records) and ``bulk_pushes`` x 100 KB in queue bulk, all checkpointed by a clean shutdown;
    returns the segment holding q: the shared file, where a run this small is settled (bulk gets files of its own)."""
    server = start_respq(data_dir)
    try:
        with redis.Redis(port=server.port, socket_timeout=10) as client:
            client.rpush("q", *SMALL)
            for _ in range(bulk_pushes):
                client.rpush("bulk", *BULK)
        assert server.terminate() == 0
    finally:
        server.stop()
    (segment,) = (data_dir / "queues" / queue_dir_name(SHARED_QID)).glob("*.seg")
    return segment


def flip_byte_in_record(segment: Path, record: int) -> int:
    """Flips a payload byte of record number ``record`` of q (only its checksum can tell); returns its offset."""
    data = bytearray(segment.read_bytes())
    offset = SEGMENT_HEADER.size + record * (OVERHEAD + 8)
    data[offset + HEAD_SIZE + 3] ^= 0x01
    segment.write_bytes(bytes(data))
    return offset


def test_a_flipped_byte_in_a_checkpointed_segment_is_named_by_the_scrub_while_the_server_serves(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    segment = fill_and_stop(data_dir, bulk_pushes=30)  # 3 MB: at 1 MB/s the scrub runs for seconds
    offset = flip_byte_in_record(segment, 50)
    server = start_respq(data_dir, "--scrub-bandwidth", "1")
    try:
        with redis.Redis(port=server.port, socket_timeout=10) as client:
            assert client.ping()
            assert persistence(server)["respq_scrub_status"] == "running"  # serving did not wait for it
            assert client.llen("bulk") == 3000
            wait_until(lambda: persistence(server)["respq_scrub_status"] == "done", timeout=60)
            info = persistence(server)
            assert info["respq_scrub_errors"] == 1
            assert info["respq_last_scrub_error"] == f"{segment}@{offset}"
            assert int(info["respq_scrub_bytes"]) >= 3_000_000  # type: ignore[call-overload]
            log = server.output.decode()
            assert f"corrupt data in {segment} at offset {offset}: checksum mismatch" in log
            # Records before the damage are served; the damaged one is an error, never skipped.
            assert client.lrange("q", 0, 49) == SMALL[:50]
            with pytest.raises(redis.ResponseError, match=f"at offset {offset}"):
                client.lrange("q", 0, -1)
    finally:
        server.stop()


def test_a_clean_directory_scrubs_to_done_without_errors(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    fill_and_stop(data_dir, bulk_pushes=3)
    server = start_respq(data_dir)
    try:
        wait_until(lambda: persistence(server)["respq_scrub_status"] == "done", timeout=60)
        info = persistence(server)
        assert info["respq_scrub_errors"] == 0 and info["respq_last_scrub_error"] == ""
        assert int(info["respq_scrub_bytes"]) >= 300_000 + len(SMALL) * (OVERHEAD + 8)  # type: ignore[call-overload]
        assert "Scrub of checkpointed segments ended (done)" in server.output.decode()
    finally:
        server.stop()


def test_scrub_bandwidth_0_turns_the_scrub_off(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    offset = flip_byte_in_record(fill_and_stop(data_dir, bulk_pushes=1), 10)
    server = start_respq(data_dir, "--scrub-bandwidth", "0")
    try:
        with redis.Redis(port=server.port, socket_timeout=10) as client:
            assert client.config_get("scrub-bandwidth") == {"scrub-bandwidth": "0"}
            info = persistence(server)
            assert (info["respq_scrub_status"], info["respq_scrub_bytes"], info["respq_scrub_errors"]) == ("off", 0, 0)
            assert f"at offset {offset}" not in server.output.decode()
    finally:
        server.stop()


def test_setting_scrub_bandwidth_to_0_stops_a_running_scrub(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    fill_and_stop(data_dir, bulk_pushes=30)
    server = start_respq(data_dir, "--scrub-bandwidth", "1")
    try:
        with redis.Redis(port=server.port, socket_timeout=10) as client:
            assert persistence(server)["respq_scrub_status"] == "running"
            assert client.config_set("scrub-bandwidth", 0)
            wait_until(lambda: persistence(server)["respq_scrub_status"] == "off", timeout=30)
            assert int(persistence(server)["respq_scrub_bytes"]) < 3_000_000  # type: ignore[call-overload]
    finally:
        server.stop()


def test_setting_scrub_bandwidth_above_0_again_starts_a_new_pass(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    offset = flip_byte_in_record(fill_and_stop(data_dir, bulk_pushes=1), 10)
    server = start_respq(data_dir, "--scrub-bandwidth", "0")
    try:
        with redis.Redis(port=server.port, socket_timeout=10) as client:
            assert persistence(server)["respq_scrub_status"] == "off"
            assert client.config_set("scrub-bandwidth", 100)
            wait_until(lambda: persistence(server)["respq_scrub_status"] == "done", timeout=30)
            info = persistence(server)
            assert info["respq_scrub_errors"] == 1 and str(info["respq_last_scrub_error"]).endswith(f"@{offset}")
            assert "Scrub of checkpointed segments started" in server.output.decode()
    finally:
        server.stop()

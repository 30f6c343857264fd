"""JSON log lines reach the file in batches, and never close the process's stderr."""

from __future__ import annotations

import asyncio
import gc
import io
import os
import select
import threading

import pytest
import structlog

from gateway.telemetry import logs
from gateway.telemetry.logs import FLUSH_S, configure_logging


@pytest.fixture
def pipe_stream():
    """A raw file (as `sys.stderr.buffer` often is) whose other end the test reads."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    stream = io.FileIO(write_fd, "wb")
    yield stream, read_fd
    structlog.reset_defaults()
    stream.close()
    os.close(read_fd)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 20)
    except BlockingIOError:
        return b""


async def test_info_lines_are_written_together_within_the_flush_interval(pipe_stream):
    """Three lines in a row: nothing written at once, all three in one batch soon after."""
    stream, read_fd = pipe_stream
    configure_logging("json", "info", stream=stream)
    log = structlog.get_logger("batching")
    for n in range(3):
        log.info("line", n=n)
    assert _read(read_fd) == b""  # buffered, not one write(2) per line
    await asyncio.sleep(FLUSH_S * 3)
    assert _read(read_fd).count(b'"event":"line"') == 3


async def test_a_warning_is_written_at_once_with_what_came_before(pipe_stream):
    """Warnings and errors are not held back, and keep their order after info lines."""
    stream, read_fd = pipe_stream
    configure_logging("json", "info", stream=stream)
    log = structlog.get_logger("batching")
    log.info("first")
    log.warning("second")
    written = _read(read_fd)
    assert written.index(b'"first"') < written.index(b'"second"')


async def test_a_replaced_configuration_does_not_close_the_file(pipe_stream):
    """Configuring twice (the CLI, then its worker) must leave the file open and used."""
    stream, read_fd = pipe_stream
    configure_logging("json", "info", stream=stream)
    structlog.get_logger("batching").warning("before")
    configure_logging("json", "info", stream=stream)
    gc.collect()  # the first configuration's buffer is gone now
    assert not stream.closed
    structlog.get_logger("batching").warning("after")
    written = _read(read_fd)
    assert b'"before"' in written
    assert b'"after"' in written


class _Recording(io.FileIO):
    """A raw file that remembers the size of each write."""

    def __init__(self, fd: int) -> None:
        super().__init__(fd, "wb", closefd=False)
        self.sizes: list[int] = []
        self.data = bytearray()

    def write(self, b) -> int:  # type: ignore[override]
        self.sizes.append(len(b))
        self.data += bytes(b)
        return len(b)


async def test_lines_are_written_whole_in_pipe_sized_writes():
    """Workers share one stderr pipe: a write never cuts a line, nor exceeds PIPE_BUF."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    stream = _Recording(devnull)
    try:
        configure_logging("json", "info", stream=stream)
        log = structlog.get_logger("batching")
        for n in range(300):
            log.info("line", n=n, padding="x" * (n % 200))
        await asyncio.sleep(FLUSH_S * 3)
    finally:
        structlog.reset_defaults()
        os.close(devnull)
    assert len(stream.sizes) < 300  # batched
    assert max(stream.sizes) <= select.PIPE_BUF  # what the kernel keeps whole
    written = bytes(stream.data)
    assert written.count(b'"event":"line"') == 300
    offset = 0
    for size in stream.sizes:  # every write ends at a line's end
        offset += size
        assert written[offset - 1 : offset] == b"\n"


async def test_a_log_call_inside_a_log_call_does_not_deadlock(pipe_stream):
    """A signal handler logging while the thread is inside a log call: no self-deadlock."""
    stream, read_fd = pipe_stream
    configure_logging("json", "info", stream=stream)
    lines = logs._ACCESS.lines
    assert lines is not None

    def nested() -> None:
        with lines._lock:  # as if interrupted inside `line()`
            structlog.get_logger("batching").warning("from a handler")

    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert b"from a handler" in _read(read_fd)


async def test_exit_flushes_every_logger_not_only_the_last(pipe_stream):
    """A logger kept from an earlier configuration still has its lines written at exit."""
    stream, read_fd = pipe_stream
    configure_logging("json", "info", stream=stream)
    first = structlog.get_logger("first").bind()  # bound now: keeps this configuration
    first.info("held by the first")
    configure_logging("json", "info", stream=stream)
    structlog.get_logger("second").info("held by the second")
    logs.flush_logs()  # as at exit
    written = _read(read_fd)
    assert b"held by the first" in written
    assert b"held by the second" in written

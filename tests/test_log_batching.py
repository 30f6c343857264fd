"""JSON log lines reach the file in batches, and never close the process's stderr."""

from __future__ import annotations

import asyncio
import gc
import io
import os

import pytest
import structlog

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

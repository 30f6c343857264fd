"""`serve --workers N`: a master process that keeps N serving workers alive.

Workers are spawned processes sharing one port (`SO_REUSEPORT`; the kernel spreads the
connections). The master only watches them: a worker that exits is reaped at once and
started again after a backoff that doubles with each fast crash (one within
`FAST_CRASH_S` of its start). A slot that crashes fast `MAX_FAST_CRASHES` times in a row
is a crash loop no restart will cure (bad code, a port taken, a missing secret): the
master logs `workers_crash_loop`, stops the others and exits with status 1, so the
orchestrator sees the failure. SIGTERM or SIGINT drains: every worker gets SIGTERM,
finishes its requests (aiohttp's graceful shutdown), and is killed only if it outlives
`DRAIN_S`.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

import structlog

log = structlog.get_logger("supervisor")
FAST_CRASH_S = 10.0
MAX_FAST_CRASHES = 5
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0
DRAIN_S = 75.0  # above aiohttp's 60 s graceful shutdown
TICK_S = 0.2


@dataclass
class Slot:
    """One worker position: its current process and its recent crash history."""

    number: int
    process: BaseProcess | None = None
    started_at: float = 0.0
    fast_crashes: int = 0
    restart_at: float = field(default=0.0)


class Supervisor:
    """Start, watch, restart and drain the workers."""

    def __init__(
        self,
        target: Callable[..., None],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        workers: int,
    ) -> None:
        """`target(*args, **kwargs)` is what each worker runs (importable by name)."""
        self._spawn = multiprocessing.get_context("spawn")
        self._target, self._args, self._kwargs = target, args, kwargs
        self._slots = [Slot(n) for n in range(workers)]
        self._stopping = False

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT (status 0) or a crash loop (status 1)."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for slot in self._slots:
            self._start(slot)
        status = 0
        while not self.stopping():
            sentinels = [s.process.sentinel for s in self._slots if s.process]
            wait(sentinels, timeout=TICK_S)
            if not self.stopping() and not self._watch():
                status = 1
                break
        self._drain()
        return status

    def stopping(self) -> bool:
        """Whether a signal asked the master to drain (set from the signal handler)."""
        return self._stopping

    def _stop(self, signum: int, _frame: object) -> None:
        log.info("workers_draining", signal=signal.Signals(signum).name)
        self._stopping = True

    def _start(self, slot: Slot) -> None:
        process = self._spawn.Process(
            target=self._target, args=self._args, kwargs=self._kwargs, daemon=False
        )
        process.start()
        slot.process, slot.started_at = process, time.monotonic()
        log.info("worker_started", slot=slot.number, pid=process.pid)

    def _watch(self) -> bool:
        """Reap dead workers and restart those whose backoff is over; False: give up."""
        now = time.monotonic()
        for slot in self._slots:
            process = slot.process
            if process is not None and not process.is_alive():
                process.join()
                lived = now - slot.started_at
                slot.fast_crashes = slot.fast_crashes + 1 if lived < FAST_CRASH_S else 0
                if slot.fast_crashes >= MAX_FAST_CRASHES:
                    log.error(
                        "workers_crash_loop",
                        slot=slot.number,
                        crashes=slot.fast_crashes,
                        exitcode=process.exitcode,
                        hint="a worker keeps dying within seconds of starting; "
                        "see its log above",
                    )
                    return False
                backoff = min(
                    MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** max(0, slot.fast_crashes - 1)
                )
                log.warning(
                    "worker_died",
                    slot=slot.number,
                    pid=process.pid,
                    exitcode=process.exitcode,
                    restart_in_s=backoff,
                )
                slot.process, slot.restart_at = None, now + backoff
            if slot.process is None and now >= slot.restart_at:
                self._start(slot)
        return True

    def _drain(self) -> None:
        """SIGTERM every worker, wait for them to finish, kill stragglers."""
        alive = [s.process for s in self._slots if s.process and s.process.is_alive()]
        for process in alive:
            process.terminate()
        give_up = time.monotonic() + DRAIN_S
        for process in alive:
            process.join(max(0.0, give_up - time.monotonic()))
            if process.is_alive():
                log.warning("worker_killed", pid=process.pid)
                process.kill()
                process.join()
        log.info("workers_stopped")


def supervise(
    target: Callable[..., None],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    workers: int,
) -> int:
    """Run `workers` copies of `target` under a `Supervisor`; the master's exit status."""
    return Supervisor(target, args, kwargs, workers).run()

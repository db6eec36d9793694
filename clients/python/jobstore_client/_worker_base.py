"""What ``Worker`` (threads) and ``AsyncWorker`` (asyncio) share: their settings, counters and
the two-signal shutdown. Each subclass brings its own stop flag and slots."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any, Optional, Sequence

log = logging.getLogger("jobstore.worker")


class WorkerBase:
    def __init__(self, client: Any, types: Optional[Sequence[str]], lease_seconds: int,
                 concurrency: int, name: Optional[str], poll_seconds: float,
                 shutdown_grace: float):
        if lease_seconds < 3:
            raise ValueError("lease_seconds must be at least 3")
        self.types = list(types) if types else None
        self.lease_seconds = lease_seconds
        self.concurrency = concurrency
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.poll_seconds = min(max(poll_seconds, 0.1), 2.0)  # a stop is noticed within this
        self.shutdown_grace = shutdown_grace
        self.completed = 0
        self.failed = 0
        self.slot_restarts = 0
        self._signals = 0

    @property
    def stopping(self) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _on_signal(self, signum: int, *_frame: Any) -> None:
        """The first SIGINT/SIGTERM stops the worker; a second exits the process at once."""
        self._signals += 1
        if self._signals > 1:
            log.warning("second signal: exiting at once; jobs in hand go back to the queue when "
                        "their leases expire")
            os._exit(128 + signum)
        log.info("stopping: no new jobs; %d s for the jobs in hand (a second signal exits now)",
                 self.shutdown_grace)
        self.stop()

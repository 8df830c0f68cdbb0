"""``WakeChannel``: tells idle worker threads of every process sharing a database that new work is stored, at once.

Each process that runs worker threads binds a UNIX datagram socket ``<pid>.sock`` in ``<database>.wake/``, beside
the database; whoever stores a message (the webhook, in whichever process received it) sends one empty datagram to
every socket there. A datagram is only a hint: the queue in the database stays the truth, idle workers still look
at it every ``IDLE_POLL_S``, and a lost or refused hint costs at most that wait. Sending never blocks: a full socket
means its owner has hints to read already; a socket whose process died (kill -9) is removed by the next sender.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

SUN_PATH_MAX = 107  # bytes of an AF_UNIX path on Linux, without the final NUL


class WakeChannel:
    def __init__(self, directory: Path, name: str | None = None) -> None:
        self.directory = directory
        self.name = name or str(os.getpid())  # one socket per process; tests name two in one process
        self._own: Path | None = None
        self._listener: socket.socket | None = None
        self._sender: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()

    @classmethod
    def beside(cls, database: Path) -> WakeChannel:
        return cls(database.with_name(database.name + ".wake"))

    def listen(self, on_wake: Callable[[], None]) -> bool:
        """Bind this process's socket and call ``on_wake`` on every hint; False when it cannot (the poll remains)."""
        own = self.directory / f"{self.name}.sock"
        if len(os.fsencode(own)) > SUN_PATH_MAX:
            log.warning("wake-up socket path too long (%s): idle workers will find new work by polling", own)
            return False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                own.unlink()  # left by a dead process that had our pid
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            listener.bind(str(own))
        except OSError as exc:
            log.warning("cannot bind wake-up socket %s (%s): idle workers will find new work by polling", own, exc)
            return False
        self._own, self._listener = own, listener
        self._closing.clear()
        self._thread = threading.Thread(target=self._receive, args=(on_wake,), name="whatsapp-wake", daemon=True)
        self._thread.start()
        return True

    def notify(self) -> int:
        """Send a hint to every other process's socket; returns how many took it."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return 0
        with self._lock:
            if self._sender is None:
                self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sender.setblocking(False)
            sender = self._sender
        woken = 0
        for name in names:
            path = self.directory / name
            if not name.endswith(".sock") or path == self._own:
                continue
            try:
                sender.sendto(b"", str(path))
                woken += 1
            except ConnectionRefusedError:  # nobody bound: its process died
                with contextlib.suppress(OSError):
                    path.unlink()
            except OSError:  # full (its owner is awake already), or removed meanwhile
                pass
        return woken

    def close(self) -> None:
        self._closing.set()
        if self._own is not None and self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.sendto(b"", str(self._own))  # unblocks the receiving thread
            if self._thread is not None:
                self._thread.join(2.0)
            with contextlib.suppress(OSError):
                self._own.unlink()
            self._listener.close()
        if self._sender is not None:
            self._sender.close()
        self._own = self._listener = self._sender = self._thread = None

    def _receive(self, on_wake: Callable[[], None]) -> None:
        listener = self._listener
        assert listener is not None
        while not self._closing.is_set():
            try:
                listener.recv(16)
            except OSError:
                return
            if not self._closing.is_set():
                on_wake()

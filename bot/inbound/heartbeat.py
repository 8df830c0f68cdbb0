"""``LeaseHeartbeat``: keeps one claim's lease alive while its worker is still working on the message.

A lease only has to outlast the gap between two renewals, not the slowest model call or Twilio send, so
it can be short (``INBOUND_LEASE_S``) and a killed worker's message is taken over soon after it died::

    claim ──> heartbeat thread: every ``every_s``, lease = now + ``lease_s`` ──> stop() when the claim ends
                    │ LeaseLost (taken over, or already settled)
                    └──> stops renewing; ``lost`` tells the worker to drop what it computed

The thread is a daemon, so it dies with its process: a killed worker's lease then runs out within
``lease_s``. A worker that stalls while its heartbeat still runs keeps its lease; the fencing token still
refuses the writes of any holder that lost it. A renewal that fails (a locked database) is logged and
tried again at the next beat; it is never fatal to the claim.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from bot.inbound.queue import ClaimedMessage, InboundQueue, LeaseLost

log = logging.getLogger(__name__)


class LeaseHeartbeat:
    """Renews ``claim``'s lease every ``every_s`` seconds, from entering the ``with`` block until leaving it."""

    def __init__(self, queue: InboundQueue, claim: ClaimedMessage, lease_s: float, every_s: float) -> None:
        if not 0 < every_s < lease_s:
            raise ValueError(f"a heartbeat every {every_s}s cannot keep a {lease_s}s lease alive")
        self.queue = queue
        self.claim = claim
        self.lease_s = lease_s
        self.every_s = every_s
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-heartbeat-{claim.id}", daemon=True)

    @property
    def lost(self) -> bool:
        """True once a renewal found that the claim no longer holds the message."""
        return self._lost.is_set()

    def raise_if_lost(self) -> None:
        """Before writing for the claim: give up at once, without a transaction, if the lease is known lost."""
        if self.lost:
            raise LeaseLost(f"inbound message {self.claim.id} is no longer leased to this worker (heartbeat)")

    def start(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing, and wait for a renewal under way so none lands after the claim has ended."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()  # bounded: a renewal waits for the database at most its busy timeout

    def __enter__(self) -> LeaseHeartbeat:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.every_s):
                try:
                    self.queue.renew_lease(self.claim, self.lease_s)
                except LeaseLost:
                    self._lost.set()
                    if not self._stop.is_set():
                        log.warning("lease of inbound message %s lost while working on it", self.claim.id)
                    return
                except Exception:  # noqa: BLE001 - e.g. database locked past busy_timeout: the next beat retries
                    log.exception("could not renew the lease of inbound message %s", self.claim.id)
        finally:
            self.queue.store.close()  # this thread's own connection, not the worker's

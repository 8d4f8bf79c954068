"""The periodic sweep every `facegen serve` and `facegen worker` runs: cases whose worker died are queued again while
the service keeps running (not only at the next start), and refilled rate-limit buckets are dropped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from facegen.service import ratelimit
from facegen.service.database import session_factory
from facegen.service.jobs import requeue_stale
from facegen.service.settings import Settings

log = logging.getLogger(__name__)


class Sweeper:
    """A daemon thread that sweeps every `settings.sweep_seconds` until stopped."""

    def __init__(self, settings: Settings, submit: Callable[[str], None],
                 also: Callable[[], object] | None = None) -> None:  # fmt: skip
        """`also` runs at each sweep too (`facegen serve` starts its dead worker processes again)."""
        self.settings, self.submit, self.also, self._stop = settings, submit, also, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="facegen-sweep")

    def sweep(self) -> list[str]:
        """One sweep: queue again the cases of dead workers; their ids."""
        if self.also is not None:
            self.also()
        requeued = requeue_stale(self.settings, self.submit)
        with session_factory(self.settings).begin() as session:
            ratelimit.prune(session, self.settings.rate_limit)
        if requeued:
            log.warning("queued again %d case(s) whose worker stopped reporting: %s", len(requeued), requeued)
        return requeued

    def _run(self) -> None:
        while not self._stop.wait(self.settings.sweep_seconds):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 (a database hiccup must not end the sweeping; the next one retries)
                log.exception("the stale-job sweep failed; trying again in %g s", self.settings.sweep_seconds)

    def start(self) -> Sweeper:
        """Start sweeping in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sweeping (waits for a sweep under way)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

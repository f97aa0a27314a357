"""Progress lines on stdout every few seconds, flushed, so a pod's log shows a long run is alive and how fast."""
from __future__ import annotations

import threading
import time


class Progress:
    """Thread-safe counters plus a printer thread; prints nothing on runs shorter than one interval.

    Samples count as done when generated (Offline reports them to LoadGen only at the end); tokens/s counts the
    output tokens of samples already returned to LoadGen.
    """

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = time.monotonic()
        self.issued = 0
        self.completed = 0
        self.output_tokens = 0
        self.generated = 0

    def add_issued(self, count: int) -> None:
        with self._lock:
            self.issued += count

    def add_completed(self, output_tokens: int) -> None:
        with self._lock:
            self.completed += 1
            self.output_tokens += output_tokens

    def add_generated(self, count: int) -> None:
        with self._lock:
            self.generated += count

    def start(self) -> None:
        self._start = time.monotonic()
        if self._interval_s > 0:
            self._thread = threading.Thread(target=self._print_periodically, name="progress", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def line(self) -> str:
        with self._lock:
            issued, completed, tokens = self.issued, max(self.completed, self.generated), self.output_tokens
        elapsed = max(time.monotonic() - self._start, 1e-9)
        return (f"progress: {completed}/{issued} samples done ({completed / elapsed:.1f}/s), {tokens} output tokens "
                f"returned to LoadGen ({tokens / elapsed:.1f}/s), {elapsed:.0f} s")

    def _print_periodically(self) -> None:
        while not self._stopped.wait(self._interval_s):
            print(self.line(), flush=True)

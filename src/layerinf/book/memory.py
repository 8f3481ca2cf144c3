"""The peak resident memory of a notebook's kernel, sampled while it runs."""

from __future__ import annotations

import threading

import psutil


class ChildMemoryPeak:
    """Largest resident memory (MB) of any one child process (a notebook's kernel) while the
    `with` block runs, sampled every `interval` seconds by a background thread (a spike shorter than
    that can be missed). Per notebook, unlike ``RUSAGE_CHILDREN``'s maximum over every child the
    build has waited for."""

    def __init__(self, interval: float = 0.5) -> None:
        self._me, self.interval = psutil.Process(), interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        for child in self._me.children(recursive=True):
            try:
                self.peak_mb = max(self.peak_mb, child.memory_info().rss / 2**20)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # ended between listing and reading

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> ChildMemoryPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

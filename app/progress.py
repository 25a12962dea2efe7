"""A progress line for long commands (demo data, retention, benchmark data generation).

Written to stderr and redrawn in place, only when stderr is a terminal: logs, pipes and
CI output stay clean. Usage:

    with Progress("demo", total=37) as progress:
        for item in items:
            ...
            progress.advance()
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

# Redraw at most this often: a terminal is slow next to a tight loop.
REDRAW_S = 0.1


class Progress:
    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._stream = stream
        self._drawn_at = 0.0
        self._started = time.monotonic()

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    @property
    def enabled(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def line(self) -> str:
        elapsed = time.monotonic() - self._started
        if self.total:
            share = min(self.done / self.total, 1.0)
            bar = "#" * int(share * 20)
            return (
                f"{self.label}: [{bar:<20}] {self.done}/{self.total} ({share:.0%}, {elapsed:.0f} s)"
            )
        return f"{self.label}: {self.done} ({elapsed:.0f} s)"

    def advance(self, steps: int = 1) -> None:
        self.done += steps
        now = time.monotonic()
        if self.enabled and (now - self._drawn_at >= REDRAW_S or self.done == self.total):
            self._drawn_at = now
            self.stream.write("\r\x1b[2K" + self.line())
            self.stream.flush()

    def close(self) -> None:
        """End the line (once something was drawn)."""
        if self.enabled and self.done:
            self.stream.write("\r\x1b[2K" + self.line() + "\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

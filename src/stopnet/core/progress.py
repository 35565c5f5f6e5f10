"""Progress of long work: one callback type, shown as a Rich bar on a terminal and as plain lines otherwise.

Services and pure code take an optional ``progress(done, total)`` callback (``total`` None when unknown)
and call it as work advances; only the CLI decides how it is shown. On a terminal a Rich bar gives the
count, the rate and the time left; in a log (CI, cron) :class:`PlainProgress` writes a line at each tenth
of the work and at the end, so logs stay short and readable. Both go to standard error.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

ProgressCallback = Callable[[int, int | None], None]


def _rate(done: int, seconds: float) -> str:
    return f"{done / seconds:,.0f}/s" if seconds > 0 else "-"


class PlainProgress:
    """Lines like ``score: 500,000 / 1,000,000 rows (50%), 81,234/s, 6 s left`` at each tenth and the end."""

    def __init__(self, label: str, unit: str, stream: TextIO, clock: Callable[[], float] = time.monotonic):
        self.label, self.unit, self.stream, self.clock = label, unit, stream, clock
        self.started = clock()
        self.next_tenth = 1
        self.finished = False

    def __call__(self, done: int, total: int | None) -> None:
        if self.finished:
            return
        elapsed = self.clock() - self.started
        if total:
            if done < total and done * 10 < self.next_tenth * total:
                return
            self.next_tenth = done * 10 // total + 1
            left = elapsed * (total - done) / done if done else 0.0
            line = (
                f"{self.label}: {done:,} / {total:,} {self.unit} ({done * 100 // total}%), "
                f"{_rate(done, elapsed)}, {left:,.0f} s left"
            )
            self.finished = done >= total
        else:
            line = f"{self.label}: {done:,} {self.unit}, {_rate(done, elapsed)}"
        print(line, file=self.stream, flush=True)


@contextmanager
def show_progress(
    label: str, unit: str = "rows", *, stream: TextIO | None = None, terminal: bool | None = None
) -> Iterator[ProgressCallback]:
    """A callback that shows progress on ``stream`` (stderr): a Rich bar on a terminal, else plain lines."""
    out = stream or sys.stderr
    if not (out.isatty() if terminal is None else terminal):
        yield PlainProgress(label, unit, out)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"{task.speed:,.0f} {unit}/s" if task.speed else "", style="progress.data.speed")

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TaskProgressColumn(),
        RateColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=out, force_terminal=True)) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update

"""How long-running ML work reports progress: a callable the caller supplies (a terminal bar, a
database row), so the engine knows nothing of either."""

import sys
import time
from typing import Protocol, TextIO


class Progress(Protocol):
    def __call__(self, stage: str, done: int, total: int, **info: float) -> None:
        """Report that `done` of `total` units of `stage` are finished; `info` carries e.g. loss."""


def no_progress(stage: str, done: int, total: int, **info: float) -> None:
    """A Progress that reports nothing."""


class TerminalProgress:
    """A Progress drawn as one line per stage. On a terminal the line is redrawn in place; in a
    log (docker logs, CI) it is written when the stage ends and every half minute meanwhile.
    Rates and time left come from the wall clock since the stage began, so a stage whose units
    come from a cache does not claim millions per second."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty()
        self.redraw_seconds = 0.2 if self.interactive else 30.0
        self.stage: str | None = None
        self.ended: str | None = None  # the last stage written as finished
        self.started = self.drawn = 0.0
        self.first_done = 0  # units already done when the stage was first reported
        self.line_open = False

    def __call__(self, stage: str, done: int, total: int, **info: float) -> None:
        now = time.monotonic()
        finished = done >= total
        if finished and stage == self.ended:
            return  # reported finished again (a job's last state read twice): already written
        if stage != self.stage:
            self.close()
            self.stage, self.started, self.drawn, self.ended = stage, now, now, None
            self.first_done = done
        if finished or now - self.drawn >= self.redraw_seconds:
            self.drawn = now
            self._draw(
                describe_progress(stage, done, total, now - self.started, info, self.first_done)
            )
        if finished:
            self.close()
            self.ended = stage

    def _draw(self, line: str) -> None:
        if self.interactive:
            self.stream.write(f"\r{line}\x1b[K")  # back to the line's start, erase the rest
            self.line_open = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.line_open:
            self.stream.write("\n")
            self.stream.flush()
            self.line_open = False
        self.stage = None


def describe_progress(
    stage: str, done: int, total: int, seconds: float, info: dict, first_done: int = 0
) -> str:
    """`stage  done/total  percent  elapsed[, time left]  info`, e.g. `pretraining  12/30  40%
    1 min 5 s, about 1 min 38 s left  loss 0.4123`. `seconds` counts from the stage's first
    report, when `first_done` units were already done (an epoch loop reports at its end):
    the time left is guessed from the units done since."""
    parts = [stage, f"{done:,}/{total:,}", f"{100 * done // max(total, 1)}%"]
    timing = _duration(seconds)
    since = done - first_done
    if since > 0 and done < total and seconds >= 2:
        timing += f", about {_duration(seconds / since * (total - done))} left"
    parts.append(timing)
    parts += [f"{key} {value:.4f}" for key, value in info.items()]
    return "  ".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s"

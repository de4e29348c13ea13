"""How long-running ML work reports progress: a callable the caller supplies (a terminal bar, a
database row), so the engine knows nothing of either."""

from typing import Protocol


class Progress(Protocol):
    def __call__(self, stage: str, done: int, total: int, **info: float) -> None:
        """Report that `done` of `total` units of `stage` are finished; `info` carries e.g. loss."""


def no_progress(stage: str, done: int, total: int, **info: float) -> None:
    """A Progress that reports nothing."""


class TerminalProgress:
    """A Progress drawn as one tqdm bar per stage in the terminal."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar = None

    def __call__(self, stage: str, done: int, total: int, **info: float) -> None:
        from tqdm import tqdm

        if stage != self.stage or self.bar is None:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=stage, dynamic_ncols=True)
        self.bar.total = total
        self.bar.n = done
        if info:
            self.bar.set_postfix(
                {key: f"{value:.4f}" for key, value in info.items()}, refresh=False
            )
        self.bar.refresh()
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.stage = None

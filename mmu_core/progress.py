"""Progress reporting: a tiny protocol, a silent default and a rich progress bar."""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class ProgressSink(Protocol):
    def start(self, phase: str, total: int) -> None: ...
    def advance(self, phase: str, n: int = 1) -> None: ...


class NullProgress:
    def start(self, phase: str, total: int) -> None:
        pass

    def advance(self, phase: str, n: int = 1) -> None:
        pass


class RichProgress:
    """A rich progress bar per phase (e.g. 'convert units', 'write pixel files')."""

    def __init__(self, console: Console | None = None):
        self._progress = Progress(
            TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=False,
        )
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> RichProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def start(self, phase: str, total: int) -> None:
        self._tasks[phase] = self._progress.add_task(phase, total=total)

    def advance(self, phase: str, n: int = 1) -> None:
        self._progress.advance(self._tasks[phase], n)

"""Exceptions the core raises or expects plugins to raise."""

from __future__ import annotations


class MMUError(Exception):
    """Base class of every error mmu raises on purpose."""


class InputError(MMUError):
    """Bad raw input: names the file, the object (when one is concerned) and what is wrong.

    Converters raise it for anything the user must fix in their data. ``mmu build --skip-bad``
    turns it into a skipped unit listed in the summary instead of a failed build.
    """

    def __init__(self, message: str, file: str | None = None, object: str | None = None):
        self.file = None if file is None else str(file)
        self.object = None if object is None else str(object)
        self.message = message
        parts = []
        if self.file:
            parts.append(f"file {self.file}")
        if self.object:
            parts.append(f"object {self.object}")
        super().__init__(f"{', '.join(parts)}: {message}" if parts else message)


class BuildError(MMUError):
    """A build cannot go on: names the unit of work and, where known, the object."""


class OutOfSpaceError(BuildError):
    """The disk holding the output is (about to be) full: names the file being written, the
    bytes needed and the bytes free. The step that hit it leaves no temporary file, and
    rerunning the same command after freeing space finishes the job."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: the command stops at once (a BaseException, like
    KeyboardInterrupt, so no ``except Exception`` swallows it)."""


class PluginError(MMUError):
    """A plugin misbehaved (returned malformed records, claimed a taken survey name, ...)."""


class UnknownSurveyError(MMUError):
    """No installed plugin provides the survey asked for."""

"""User-facing errors: anything raised as MMBenchError is printed as one line and exits with code 2."""

from __future__ import annotations


class MMBenchError(Exception):
    """Bad input from the user (a name, a file, a config). The message names the thing and the fix."""

    exit_code = 2


class UnknownNameError(MMBenchError, KeyError):
    """A model, task, metric or data format name that no registry knows."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(MMBenchError):
    """Missing or malformed data (a folder, an annotation file, a manifest)."""


class MissingDataError(DataError):
    """Data that is not where the task looks for it (as opposed to present but malformed): a task listing
    several data sources tries the next one."""


class ItemError(Exception):
    """One item cannot be processed (a corrupt image or WAV): recorded as a failed item, the run goes on."""


class CapabilityError(MMBenchError):
    """A task asks for a capability the model does not offer."""

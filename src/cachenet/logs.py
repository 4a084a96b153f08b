"""Logging of the ``cachenet`` command: one format, stdlib logging.

``--debug`` and ``--log-file`` apply to every subcommand. Without them a
one-shot command leaves logging as Python has it (warnings as bare lines on
stderr) and a daemon logs INFO and up to stderr. Inside nova-compute, Nova's
oslo.log configures logging: cachenet's loggers only emit there, and nothing
here runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from cachenet.errors import CachenetError

if TYPE_CHECKING:  # every command imports this module: no oslo.config for --help
    from cachenet.settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(message)s"


def configure(debug: bool, log_file: Path | None) -> None:
    """Apply ``--debug`` (cachenet's own DEBUG lines, not its libraries') and
    ``--log-file`` (the log goes there instead of stderr)."""
    if not debug and log_file is None:
        return
    try:
        handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler()
    except OSError as exc:
        raise CachenetError(f"cannot write the log file {log_file}: {exc.strerror}") from None
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if debug:
        logging.getLogger("cachenet").setLevel(logging.DEBUG)


def configure_daemon() -> None:
    """A daemon logs INFO and up to stderr, unless --debug or --log-file said otherwise."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=FORMAT)


def log_start(what: str, settings: Settings) -> None:
    """The daemon's first line: what it is and every setting (the password masked)."""
    values = " ".join(f"{name}={value}" for name, value in settings.public_dict().items())
    logging.getLogger(f"cachenet.{what.replace(' ', '.')}").info("%s starting: %s", what, values)

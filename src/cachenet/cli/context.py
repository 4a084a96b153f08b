"""State shared by the subcommands of one ``cachenet`` invocation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from cachenet.config_files import config_files_of

if TYPE_CHECKING:  # imported on first use: --help needs neither oslo.config nor SQLAlchemy
    from cachenet.settings import Settings
    from cachenet.store import PortStore


@dataclass
class CliContext:
    config_files: tuple[str, ...] = ()
    _settings: Settings | None = field(default=None, repr=False)
    _store: PortStore | None = field(default=None, repr=False)

    @property
    def files(self) -> list[str]:
        """The config files this command reads: --config-file, else the defaults."""
        return config_files_of(self.config_files or None)

    @property
    def settings(self) -> Settings:
        """Loaded on first use, so ``--help`` works with a broken config."""
        if self._settings is None:
            from cachenet.settings import load_settings

            self._settings = load_settings(self.config_files or None)
        return self._settings

    @property
    def store(self) -> PortStore:
        """The port store, its schema created on first use."""
        if self._store is None:
            from cachenet.store import open_store

            self._store = open_store(self.settings)
        return self._store


pass_cli = click.make_pass_decorator(CliContext)

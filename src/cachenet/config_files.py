"""Which config files a command reads.

Apart from ``settings`` (which loads oslo.config and SQLAlchemy to parse them):
a command handed to the agent needs to know its files, not their values.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

DEFAULT_CONFIG_FILE = "/etc/cachenet/cachenet.conf"
CONFIG_ENV = "CACHENET_CONFIG"


def default_config_files() -> list[str]:
    """``$CACHENET_CONFIG`` (colon-separated), else DEFAULT_CONFIG_FILE if it exists, else none."""
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return [p for p in from_env.split(":") if p]
    return [DEFAULT_CONFIG_FILE] if os.path.isfile(DEFAULT_CONFIG_FILE) else []


def config_files_of(given: Sequence[str] | None) -> list[str]:
    """The files read for ``given`` (``--config-file`` values; None: the defaults)."""
    return default_config_files() if given is None else list(given)

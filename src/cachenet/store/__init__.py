"""IPAM: the port store (SQLite by default; PostgreSQL or MariaDB shared by many hosts).

The store's names are loaded on first use, so that the pure address
arithmetic (``cachenet.store.addresses``) is imported without SQLAlchemy's.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cachenet.store.ports import Changes, PortStore, open_store

__all__ = ["Changes", "PortStore", "open_store"]


def __getattr__(name: str) -> object:
    if name in __all__:
        return getattr(importlib.import_module("cachenet.store.ports"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

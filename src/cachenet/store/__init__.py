"""IPAM: the port store (SQLite by default; PostgreSQL or MariaDB shared by many hosts)."""

from cachenet.store.ports import Changes, PortStore, open_store

__all__ = ["Changes", "PortStore", "open_store"]

"""Durable state: one SQLite file in WAL mode, shared by every subsystem."""

from aleph.storage.db import Database, Migration, StorageError

__all__ = ["Database", "Migration", "StorageError"]

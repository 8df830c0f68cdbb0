"""The SQLite store every process shares: connections, and the schema grown by named migrations."""

from bot.store.database import Store, StoreOpenError

__all__ = ["Store", "StoreOpenError"]

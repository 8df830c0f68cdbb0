"""The SQLite store every process shares: connections, and the schema grown by named migrations."""

from bot.store.database import Store, StoreBusy, StoreOpenError

__all__ = ["Store", "StoreBusy", "StoreOpenError"]

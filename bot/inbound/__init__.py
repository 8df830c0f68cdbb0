"""The durable inbound queue: customer messages stored before the webhook answers, claimed by workers
with leases in SQLite, in order per customer, until each has had its one reply."""

from bot.inbound.queue import ClaimedMessage, InboundMessage, InboundQueue, LeaseLost, release_expired_leases

__all__ = ["ClaimedMessage", "InboundMessage", "InboundQueue", "LeaseLost", "release_expired_leases"]

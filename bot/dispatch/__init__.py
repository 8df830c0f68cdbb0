"""Dispatch: confirmed service requests offered to artisans on WhatsApp until exactly one takes each.

``Dispatch`` (``bot.dispatch.dispatcher``) owns the batches, the artisans' answers, status changes and the
customer's questions afterwards; ``ArtisanDirectory`` the artisans; ``QuartierTable`` the quartiers of Douala
(``quartiers.yaml``); ``RequestBook`` what staff read of requests; ``StaffChannel`` what staff are told.
Below the web layer: it uses the store, the outbox and sender, the conversation history and inbound messages.
"""

from bot.dispatch.directory import Artisan, ArtisanDirectory
from bot.dispatch.dispatcher import ArtisanReply, CustomerReply, Dispatch, TickReport
from bot.dispatch.errors import (
    Conflict,
    CsvImportRefused,
    DispatchError,
    DuplicateArtisan,
    IllegalTransition,
    InvalidInput,
    NotFound,
)
from bot.dispatch.quartiers import QuartierTable
from bot.dispatch.request_book import RequestBook, RequestFilter
from bot.dispatch.settings import DispatchSettings

__all__ = [
    "Artisan",
    "ArtisanDirectory",
    "ArtisanReply",
    "Conflict",
    "CsvImportRefused",
    "CustomerReply",
    "Dispatch",
    "DispatchError",
    "DispatchSettings",
    "DuplicateArtisan",
    "IllegalTransition",
    "InvalidInput",
    "NotFound",
    "QuartierTable",
    "RequestBook",
    "RequestFilter",
    "TickReport",
]

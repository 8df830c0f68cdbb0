"""Media customers send on WhatsApp (photos, voice notes): fetched safely from Twilio, kept by content hash under
the data directory, recorded per message in ``inbound_media``, and forgotten by the retention job.

    settings   MediaSettings (MEDIA_MAX_BYTES, MEDIA_FETCH_TIMEOUT_S, MEDIA_FETCH_TOTAL_S)
    fetcher    MediaFetcher: basic auth to Twilio's origin only, redirect to the CDN without it, type allow-list,
               size cap, timeouts
    library    MediaLibrary: the rows and the files (atomic writes, retention)
    intake     MediaIntake: one message's media, fetched once, for the conversation engine

Nothing here imports LiteLLM or Flask; httpx is imported by the first fetch.
"""

from bot.media.fetcher import ALLOWED_TYPES, AUDIO_TYPES, FETCHED, IMAGE_TYPES, MediaFetcher, plain_type
from bot.media.intake import MediaIntake, MediaItem
from bot.media.library import MediaLibrary, MediaRow
from bot.media.settings import MediaSettings, MediaSettingsError

__all__ = [
    "ALLOWED_TYPES",
    "AUDIO_TYPES",
    "FETCHED",
    "IMAGE_TYPES",
    "MediaFetcher",
    "MediaIntake",
    "MediaItem",
    "MediaLibrary",
    "MediaRow",
    "MediaSettings",
    "MediaSettingsError",
    "plain_type",
]

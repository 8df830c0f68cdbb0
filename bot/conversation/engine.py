"""``ConversationEngine``: one customer message in, one reply and an updated service request out.

``decide`` reads the history, asks the LLM service for a structured ``TurnReply`` (a reply that does
not parse sends the request to the next provider) and merges it into the open request; it writes
nothing but the conversation row. ``commit`` stores the turn inside the caller's transaction, so the
worker can store the turn and the outbound reply atomically, fenced by its lease. ``commit`` reads the
open request again inside that transaction and merges the turn into it: a turn of the same customer
stored while this one waited for the model is built on, never overwritten or duplicated.

What reaches the model is bounded by a ``PromptBudget`` (each message shortened, the history cut to a
token budget); what is stored is always the customer's whole message.

Media (``MediaIntake``, given by the composition root): photos go to the model as image parts, to deployments that
take images; a voice note goes as audio to one that hears it, else it is transcribed (``LLMService.transcribe``)
and the turn goes on as text; when nothing can hear it and the customer typed nothing, they are asked, in their
language, to type it (a fixed reply, no model). A medium that could not be fetched becomes a note the model reads
("[a photo could not be fetched: too large]"); it never holds the turn back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import sqlite_utils

from bot.conversation.fixed_replies import holding_reply, media_received, not_processed_reply, type_it_reply
from bot.conversation.history import ConversationHistory, HistoryMessage, RequestDraft
from bot.conversation.language import LANGUAGES, detect_language
from bot.conversation.media_parts import (
    ASKED_TO_TYPE_NOTE,
    AUDIO_FILE,
    TRANSCRIBED,
    UNHEARD_NOTE,
    audio_part,
    image_part,
    media_notes,
    needs_of,
)
from bot.conversation.prompt_budget import PromptBudget
from bot.conversation.prompts import LANGUAGE_NAMES, as_langchain, as_llm_messages, turn_prompt
from bot.conversation.turn_schema import TurnReply, parse_turn, turn_format_instructions
from bot.llm import AllProvidersFailed, LLMService
from bot.llm.error_kinds import POLICIES, Blame

if TYPE_CHECKING:
    from bot.media import MediaIntake, MediaItem

log = logging.getLogger(__name__)

# Failures that say the message itself is the problem: asking again later would be refused the same way.
REFUSED_FOR_ITS_CONTENT = frozenset(kind.value for kind, policy in POLICIES.items() if policy.blame is Blame.NOT_BLAMED)


@dataclass(frozen=True)
class Turn:
    """A customer message as the engine needs it, whatever channel brought it."""

    customer_id: str
    text: str
    channel: str = "whatsapp"
    profile_name: str | None = None
    media: list[dict[str, str]] = field(default_factory=list)  # [{"url", "content_type"}]
    latitude: float | None = None
    longitude: float | None = None
    location_label: str | None = None
    inbound_id: int | None = None
    # Which message this is in the logs and in llm_calls: the Twilio MessageSid, a chat request's generated id.
    request_id: str | None = None
    # What became of each medium ("[voice note: ...]"), once the engine has fetched them; they replace the
    # plain attachment count in what is stored and shown to the model.
    notes: tuple[str, ...] = ()

    def as_user_content(self, budget: PromptBudget | None = None) -> str:
        """The text the history stores (whole) and the model sees (the words shortened to ``budget``), plus
        notes for media and shared location, which shortening never cuts off."""
        words = self.text.strip()
        lines = [budget.message(words) if budget else words] if words else []
        if self.notes:
            lines.extend(self.notes)
        elif self.media:
            kinds = ", ".join(m.get("content_type") or "file" for m in self.media)
            lines.append(f"[the customer sent {len(self.media)} attachment(s): {kinds}]")
        if self.latitude is not None and self.longitude is not None:
            label = f" ({self.location_label})" if self.location_label else ""
            lines.append(f"[the customer shared a WhatsApp location: {self.latitude}, {self.longitude}{label}]")
        return "\n".join(lines) or "[empty message]"


@dataclass(frozen=True)
class Decision:
    """What to answer and store for one turn; nothing is stored until ``commit``."""

    turn: Turn
    conversation_id: int
    reply: str
    language: str
    provider: str | None  # None: a fixed reply (a voice note nobody could hear), no model answered
    model: str | None
    request: RequestDraft
    parsed: TurnReply


class ConversationEngine:
    def __init__(
        self,
        llm: LLMService,
        history: ConversationHistory,
        budget: PromptBudget,
        deadline_s: float | None = None,
        media: MediaIntake | None = None,
    ) -> None:
        self.llm = llm
        self.history = history
        self.budget = budget
        self.deadline_s = deadline_s
        self.media = media  # None: media stay URLs the model is told about, never fetched

    def prepare(self) -> None:
        """Build the turn's prompt and parser now (they import LangChain's tracing), not on the first customer's
        message; the web processes, that never answer, never call it."""
        turn_prompt()
        turn_format_instructions()

    def language_of(self, turn: Turn) -> str:
        """Best guess of the customer's language without a model (for the holding reply)."""
        conversation = self.history.find(turn.customer_id)
        return detect_language(turn.text, current=conversation.language if conversation else None)

    def decide(self, turn: Turn, request_id: str | None = None) -> Decision:
        """Ask the providers for this turn's reply; raises ``AllProvidersFailed`` when none gives a valid one.
        The model calls are recorded under ``request_id``, else the turn's own."""
        request_id = request_id or turn.request_id
        if self.media is None or not turn.media or turn.inbound_id is None:
            return self._answer(turn, [], request_id)
        with self.media.turn_slot():  # bounds the media bytes this process holds at once (MEDIA_TURNS_AT_ONCE)
            return self._decide_with_media(turn, self.media.gather(turn.inbound_id, turn.media), request_id)

    def _decide_with_media(self, turn: Turn, items: list[MediaItem], request_id: str | None) -> Decision:
        images = [item for item in items if item.usable and item.row.kind == "image"]
        unheard = [item for item in items if item.usable and item.row.kind == "audio" and not item.row.transcript]
        seen = [image_part(item) for item in images]
        deaf = False  # a voice note neither a model nor a transcription could hear
        if unheard:  # a model that hears audio first; else transcription
            try:
                hearing = replace(turn, notes=media_notes(items, hearing=True))
                decision = self._answer(hearing, [*seen, *(audio_part(item) for item in unheard)], request_id)
            except AllProvidersFailed as failure:
                log.info("no model that hears audio answered (%s); transcribing the voice note", failure)
            else:
                heard = decision.parsed.heard
                if heard and decision.provider:
                    for item in unheard:
                        self._keep_transcript(item, heard, decision.provider)
                return replace(decision, turn=replace(decision.turn, notes=media_notes(items, heard=heard)))
            items = [self._transcribed(item, request_id) if item in unheard else item for item in items]
            deaf = any(item.usable and item.row.kind == "audio" and not item.row.transcript for item in items)
            if deaf and not turn.text.strip() and not images:  # nothing else to answer: ask them to type it
                return self._ask_to_type(turn, items)
        noted = replace(turn, notes=media_notes(items, unheard=UNHEARD_NOTE if deaf else None))
        try:
            return self._answer(noted, seen, request_id)
        except AllProvidersFailed as failure:
            if not seen or not _refused_media(failure):
                raise
        # Every model that could look at the photos refused them: the turn goes on with the words alone.
        unseen = media_notes(items, unheard=UNHEARD_NOTE if deaf else None, unseen=True)
        return self._answer(replace(turn, notes=unseen), [], request_id)

    def _answer(self, turn: Turn, parts: list[dict[str, Any]], request_id: str | None) -> Decision:
        """One structured answer from the providers; ``parts`` (image / audio content parts) go with the message."""
        conversation = self.history.ensure(turn.customer_id, turn.channel, turn.profile_name)
        draft = self.history.open_request(conversation.id)
        draft = _with_shared_location(draft, turn)
        spoken = [note for note in turn.notes if note.startswith(TRANSCRIBED)]  # a voice note's words tell too
        language = self.language_of(replace(turn, text="\n".join([turn.text, *spoken])) if spoken else turn)
        history, unanswered = _alternating(self.budget.history(self.history.recent(conversation.id)))
        prompt = turn_prompt().format_messages(
            language=language,
            language_name=LANGUAGE_NAMES[language],
            draft=_draft_json(draft),
            missing=", ".join(draft.missing()) or "nothing: summarise and ask for confirmation",
            format_instructions=turn_format_instructions(),
            history=as_langchain(history),
            message="\n".join([*unanswered, turn.as_user_content(self.budget)]),
        )
        messages: list[dict[str, Any]] = list(as_llm_messages(prompt))
        if parts:
            messages[-1] = {"role": "user", "content": [{"type": "text", "text": messages[-1]["content"]}, *parts]}
        completion = self.llm.complete(
            messages,
            purpose="chat",
            validate=parse_turn,
            deadline_s=self.deadline_s,
            request_id=request_id,
            needs=needs_of(parts),
        )
        parsed: TurnReply = completion.parsed
        reply = parsed.reply
        if turn.media:
            reply = f"{media_received(parsed.language, [m.get('content_type', '') for m in turn.media])} {reply}"
        return Decision(
            turn=turn,
            conversation_id=conversation.id,
            reply=reply,
            language=parsed.language,
            provider=completion.provider,
            model=completion.model,
            request=_merged(draft, parsed, turn),
            parsed=parsed,
        )

    def _transcribed(self, item: MediaItem, request_id: str | None) -> MediaItem:
        """The voice note with its transcript, or as it was when no transcription deployment answered."""
        assert item.data is not None
        content_type = item.row.content_type or "audio/ogg"
        filename = f"voice-note-{item.row.position}.{AUDIO_FILE.get(content_type, 'ogg')}"
        try:
            transcription = self.llm.transcribe(
                item.data, filename, content_type, request_id=request_id, deadline_s=self.deadline_s
            )
        except AllProvidersFailed as failure:
            log.warning("voice note %d of inbound message %s not transcribed: %s", item.row.position,
                        item.row.inbound_id, failure)  # fmt: skip
            return item
        return self._keep_transcript(item, transcription.text, transcription.provider)

    def _keep_transcript(self, item: MediaItem, transcript: str, by: str) -> MediaItem:
        assert self.media is not None
        self.media.set_transcript(item, transcript, by)
        return replace(item, row=replace(item.row, transcript=transcript, transcribed_by=by))

    def _ask_to_type(self, turn: Turn, items: list[MediaItem]) -> Decision:
        """No model could hear the voice note: ask the customer to type it (the audio stays kept)."""
        conversation = self.history.ensure(turn.customer_id, turn.channel, turn.profile_name)
        draft = _with_shared_location(self.history.open_request(conversation.id), turn)
        language = self.language_of(turn)
        text = type_it_reply(language)
        parsed = TurnReply(language=language, reply=text)  # type: ignore[arg-type]  # language is fr, en or pcm
        noted = replace(turn, notes=media_notes(items, unheard=ASKED_TO_TYPE_NOTE))
        return Decision(
            turn=noted,
            conversation_id=conversation.id,
            reply=text,
            language=language,
            provider=None,
            model=None,
            request=_merged(draft, parsed, noted),
            parsed=parsed,
        )

    def commit(self, db: sqlite_utils.Database, decision: Decision) -> RequestDraft:
        """Store the turn (both messages, the request) in the caller's write transaction; returns the request
        as stored (``id`` None when nothing is known yet)."""
        turn = decision.turn
        self.history.append(db, decision.conversation_id, "user", turn.as_user_content(), inbound_id=turn.inbound_id)
        self.history.append(
            db,
            decision.conversation_id,
            "assistant",
            decision.reply,
            inbound_id=turn.inbound_id,
            provider=decision.provider,
        )
        self.history.touch(db, decision.conversation_id, decision.language)
        current = _with_shared_location(self.history.open_request(decision.conversation_id), turn)
        request = _merged(current, decision.parsed, turn)
        if request.started:
            request.id = self.history.save_request(
                db, decision.conversation_id, turn.customer_id, request, decision.language
            )
        return request

    def commit_unanswered(self, db: sqlite_utils.Database, turn: Turn, language: str, refused: bool = False) -> str:
        """Store a message no provider could answer, with the fixed reply it got; returns that reply.

        The customer's words stay in the history, so the next answered turn takes them into account; unless
        every provider ``refused`` them for what they say: then they are kept out of later prompts, which they
        would get refused too, and the reply asks the customer to say it differently.
        """
        conversation = self.history.ensure(turn.customer_id, turn.channel, turn.profile_name, db)
        text = not_processed_reply(language) if refused else holding_reply(language)
        user_kind, reply_kind = ("refused", "refused") if refused else ("message", "holding")
        content = turn.as_user_content()
        self.history.append(db, conversation.id, "user", content, inbound_id=turn.inbound_id, kind=user_kind)
        self.history.append(db, conversation.id, "assistant", text, inbound_id=turn.inbound_id, kind=reply_kind)
        self.history.touch(db, conversation.id, language)
        return text

    def respond(self, turn: Turn) -> Decision:
        """Decide and commit in one go (the synchronous chat API). Raises ``AllProvidersFailed``.

        The returned decision carries the request as stored, which includes turns committed meanwhile.
        """
        decision = self.decide(turn)
        with self.history.store.immediate() as db:
            stored = self.commit(db, decision)
        return replace(decision, request=stored)


def refused_for_its_content(failure: AllProvidersFailed) -> bool:
    """Every provider called refused the message itself (content policy, bad request, context too long)."""
    kinds = [attempt.error_kind for attempt in failure.attempts]
    return bool(kinds) and all(kind in REFUSED_FOR_ITS_CONTENT for kind in kinds)


def _refused_media(failure: AllProvidersFailed) -> bool:
    """Every model asked refused the request for what it carries, or none could take it at all."""
    if failure.attempts:
        return refused_for_its_content(failure)
    return any(reason.startswith("cannot take") for reason in failure.skipped.values())


def _draft_json(draft: RequestDraft) -> str:
    known = {**draft.known(), "status": draft.status}
    if draft.media:
        known["attachments"] = len(draft.media)
    return json.dumps(known, ensure_ascii=False)


def _alternating(history: list[HistoryMessage]) -> tuple[list[HistoryMessage], list[str]]:
    """Join consecutive messages of one role, and split off trailing user messages that never got an
    answer (all providers were down) so they join the current message: some providers refuse two user
    turns in a row."""
    merged: list[HistoryMessage] = []
    for message in history:
        if merged and merged[-1].role == message.role:
            merged[-1] = HistoryMessage(message.role, f"{merged[-1].content}\n{message.content}")
        else:
            merged.append(message)
    if merged and merged[-1].role == "user":
        return merged[:-1], [merged[-1].content]
    return merged, []


def _with_shared_location(draft: RequestDraft, turn: Turn) -> RequestDraft:
    if turn.latitude is None or turn.longitude is None:
        return draft
    label = turn.location_label or f"WhatsApp location ({turn.latitude:.5f}, {turn.longitude:.5f})"
    return replace(draft, latitude=turn.latitude, longitude=turn.longitude, location=draft.location or label)


def _merged(draft: RequestDraft, parsed: TurnReply, turn: Turn) -> RequestDraft:
    merged = replace(draft, media=[*draft.media, *turn.media])
    for name in ("service_type", "location", "description", "urgency"):
        value = getattr(parsed, name)
        if value:
            setattr(merged, name, value)
    if turn.latitude is not None and draft.location:
        merged.location = draft.location  # a shared pin is more precise than the model's paraphrase of it
    if parsed.customer_cancelled and draft.id is not None:
        merged.status = "cancelled"
    elif merged.missing():
        merged.status = "collecting"
    elif parsed.customer_confirmed and draft.status == "awaiting_confirmation":
        merged.status = "confirmed"
    else:
        merged.status = "awaiting_confirmation"
    return merged


__all__ = ["LANGUAGES", "AllProvidersFailed", "ConversationEngine", "Decision", "Turn"]

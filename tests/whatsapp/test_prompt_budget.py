"""What one customer can make every later prompt cost (issue 7, defect 6): a signed 100k-character WhatsApp
message is stored whole, but a model sees at most INBOUND_MESSAGE_MAX_CHARS of it, and the history sent
with a turn or a suggestions request is the most recent that fits PROMPT_HISTORY_TOKENS, while the open
request's fields stay in the system prompt. Measured from what the provider emulator received and from
the input tokens recorded in ``llm_calls``."""

from __future__ import annotations

from bot.sandbox.emulator import EmulatedRequest
from tests.support import CUSTOMER, Harness

MESSAGE_MAX_CHARS = 4096  # the defaults of INBOUND_MESSAGE_MAX_CHARS and PROMPT_HISTORY_TOKENS
HISTORY_TOKENS = 3000
MARKER = "[message shortened"
FIRST = "Bonjour, j'ai une fuite d'eau sous l'evier"
WHERE = "Je suis a Bonamoussadi, pres de la pharmacie"
LONG = ("Le robinet de la cuisine goutte encore et il y a de l'eau partout par terre. " * 1400)[:100_000]
ORDINARY = [
    "Merci pour votre reponse",
    "Le technicien a-t-il ses outils ?",
    "Je serai a la maison tout l'apres-midi",
    "Mon voisin a eu le meme souci",
    "J'attends votre appel",
    "Il faut couper l'eau en attendant ?",
    "Le compteur est dehors",
    "Merci encore",
]


def turn_prompts(harness: Harness) -> list[EmulatedRequest]:
    """The conversation-turn requests the emulated providers received, oldest first."""
    requests = [call.request for call in harness.emulator.calls() if call.request is not None]
    return [r for r in requests if r.messages and "You are Djobea" in r.messages[0]["content"]]


def tokens(text: str) -> int:
    return len(text) // 4  # the 4-characters-a-token estimate both LangChain and the emulator use


def history_of(request: EmulatedRequest) -> list[dict[str, str]]:
    """The messages between the system prompt and the message being answered."""
    return request.messages[1:-1]


def chat_input_tokens(harness: Harness) -> list[int]:
    rows = harness.runtime.store.db.execute(
        "select input_tokens from llm_calls where purpose = 'chat' and error_kind is null order by started_at"
    )
    return [row[0] for row in rows]


def send(harness: Harness, *bodies: str, **extra: str) -> None:
    for body in bodies:
        assert harness.whatsapp(body, **extra).status_code == 200
        harness.drain()


def test_a_100k_message_is_stored_whole_but_every_later_prompt_stays_small(harness: Harness) -> None:
    send(harness, FIRST, WHERE, LONG, *ORDINARY[:5])

    [stored] = harness.runtime.store.db.execute("select body from inbound_messages where body = ?", [LONG])
    assert stored[0] == LONG  # lose nothing: the whole message is kept, in the queue and in the history
    assert harness.runtime.store.db.execute(
        "select count(*) from conversation_messages where role = 'user' and content = ?", [LONG]
    ).fetchone() == (1,)

    prompts = turn_prompts(harness)
    assert len(prompts) == 8 and len(harness.sent()) == 8
    for prompt in prompts[2:]:  # the long message's own turn, then ordinary ones with it in the history
        system = prompt.messages[0]["content"]
        shortened = next(m["content"] for m in prompt.messages if m["content"].startswith(LONG[:200]))
        assert MARKER in shortened and len(shortened) <= MESSAGE_MAX_CHARS + 100
        assert all(len(m["content"]) <= MESSAGE_MAX_CHARS + 100 for m in prompt.messages[1:])
        assert sum(tokens(m["content"]) for m in history_of(prompt)) <= HISTORY_TOKENS
        # What the customer said first is still known, whatever the history keeps.
        assert '"location": "Bonamoussadi, pres de la pharmacie"' in system
        assert '"description": "Bonjour, j\'ai une fuite d\'eau sous l\'evier"' in system
    assert [m["role"] for m in prompts[-1].messages][:2] == ["system", "user"]

    # The issue measured 25.8k input tokens per turn after such a message; now a turn costs at most its
    # system prompt, the history budget and one shortened message.
    spent = chat_input_tokens(harness)
    assert len(spent) == 8
    for prompt, used in zip(prompts[2:], spent[2:], strict=True):
        bound = tokens(prompt.messages[0]["content"]) + HISTORY_TOKENS + tokens(prompt.messages[-1]["content"]) + 50
        assert used <= bound, (used, bound)
    assert max(spent[2:]) < 3 * max(spent[:2]), spent


def test_history_is_the_most_recent_turns_that_fit_the_budget(make_harness) -> None:
    harness = make_harness(PROMPT_HISTORY_TOKENS="200")
    send(harness, FIRST, WHERE, *ORDINARY)

    last = turn_prompts(harness)[-1]
    history = history_of(last)
    texts = [m["content"] for m in history]
    assert sum(tokens(text) for text in texts) <= 200
    assert 2 <= len(history) < 2 * (len(ORDINARY) + 1)  # trimmed, yet not empty
    assert [m["role"] for m in history] == ["user", "assistant"] * (len(history) // 2)
    assert texts[-2:] == [ORDINARY[-2], harness.sent()[-2]]  # the newest exchange is what is kept
    assert FIRST not in texts and WHERE not in texts
    system = last.messages[0]["content"]
    assert '"location": "Bonamoussadi, pres de la pharmacie"' in system  # the request is never trimmed
    assert '"description": "Bonjour, j\'ai une fuite d\'eau sous l\'evier"' in system
    assert last.messages[-1]["content"] == ORDINARY[-1]


def test_several_long_messages_share_one_history_budget(harness: Harness) -> None:
    longs = [f"{n}: " + LONG[: 5000 + n] for n in range(3)]
    send(harness, FIRST, *longs, "Merci")

    last = turn_prompts(harness)[-1]
    history = [m["content"] for m in history_of(last)]
    assert sum(tokens(text) for text in history) <= HISTORY_TOKENS
    assert [text[:3] for text in history if MARKER in text] == ["1: ", "2: "]  # the oldest went first


def test_a_shortened_message_keeps_its_attachment_note(harness: Harness) -> None:
    send(
        harness,
        LONG,
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        MediaContentType0="image/jpeg",
    )

    message = turn_prompts(harness)[-1].messages[-1]["content"]
    assert MARKER in message and message.endswith("[the customer sent 1 attachment(s): image/jpeg]")


def test_suggestions_read_the_same_bounded_history(make_harness) -> None:
    harness = make_harness(INBOUND_MESSAGE_MAX_CHARS="1000")
    send(harness, FIRST, WHERE, LONG)

    result = harness.runtime.suggestions.generate(CUSTOMER, message=LONG)

    assert not result.fallback and result.language == "fr"
    [prompt] = [
        call.request
        for call in harness.emulator.calls()
        if call.request is not None and "quick-reply suggestions" in call.request.messages[0]["content"]
    ]
    shortened = [m["content"] for m in prompt.messages[1:] if m["content"].startswith(LONG[:200])]
    assert len(shortened) == 2  # the stored long message in the history, and the one just written
    assert all(MARKER in text and len(text) <= 1000 + 100 for text in shortened)
    assert '"location": "Bonamoussadi, pres de la pharmacie"' in prompt.messages[0]["content"]

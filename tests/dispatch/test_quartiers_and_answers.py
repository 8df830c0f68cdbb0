"""Locations to quartiers of Douala from the data table, and artisans' and customers' short answers, one
case per row."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.dispatch.answers import AnswerKind, asks_for_status, asks_to_cancel, parse_artisan_answer
from bot.dispatch.quartiers import DEFAULT_PATH, QuartierTable, QuartierTableError

TABLE = QuartierTable.load()


@pytest.mark.parametrize(
    ("location", "quartier"),
    [
        ("Carrefour Ndokoti", "Ndokoti"),
        ("ndokotti marché", "Ndokoti"),
        ("Rond-point Deido", "Deïdo"),
        ("DEIDO", "Deïdo"),
        ("derrière Total Bépanda", "Bépanda"),
        ("total bepanda", "Bépanda"),
        ("Bonamoussadi, près de la pharmacie", "Bonamoussadi"),
        ("bonamousadi", "Bonamoussadi"),
        ("Newbell", "New Bell"),
        ("New-Bell Ngangue", "New Bell"),  # as long as Ngangue: the first named wins
        ("Akwa Nord", "Akwa Nord"),  # longer than Akwa
        ("PK 8", "PK8"),
        ("pk8 après le pont", "PK8"),
        ("PK-14", "PK14"),
        ("Akwa Nord", "Akwa Nord"),
        ("Akwa, boulevard de la Liberté", "Akwa"),
        ("rond-point 4 étages", "Bonabéri"),
        ("Cité des Palmiers", "Cité des Palmiers"),
        ("cite palmiers", "Cité des Palmiers"),
        ("Makepè Missokè", "Makepe"),
        ("Logpom", "Logpom"),
        ("Yaoundé, Bastos", None),
        ("WhatsApp location (4.05120, 9.76800)", None),
        ("", None),
        (None, None),
    ],
)
def test_locations_are_normalised_to_their_quartier(location: str | None, quartier: str | None) -> None:
    assert TABLE.find(location) == quartier


def test_directory_names_need_an_exact_quartier() -> None:
    assert TABLE.canonical("deido") == "Deïdo" and TABLE.canonical("Cite des palmiers") == "Cité des Palmiers"
    assert TABLE.canonical("près de Deido") is None and TABLE.canonical("Yaoundé") is None
    assert {"Akwa", "Bonabéri", "Ndokoti", "PK8", "Bassa", "Japoma", "Mboppi", "Kondi"} <= set(TABLE.names)
    assert DEFAULT_PATH.name == "quartiers.yaml"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("quartiers: [Akwa]\n", "must be a mapping"),
        ("quartiers:\n  Akwa: [deido]\n  Deïdo: []\n", "'Deïdo' names both 'Akwa' and 'Deïdo'"),
        ("quartiers:\n  Akwa: deido\n", "quartiers.Akwa: must be a list"),
        ("quartiers: {Akwa: ['!!']}\n", "has no letters or digits"),
        ("quartiers: [\n", "cannot read"),
    ],
)
def test_a_bad_table_is_refused_naming_the_file_and_entry(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "quartiers.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(QuartierTableError) as refused:
        QuartierTable.load(path)
    assert str(refused.value).startswith(str(path)) and reason in str(refused.value)


@pytest.mark.parametrize(
    ("body", "payload", "kind", "offer", "ref"),
    [
        ("OUI", None, AnswerKind.ACCEPT, None, None),
        ("oui 12", None, AnswerKind.ACCEPT, None, 12),
        ("Yes", None, AnswerKind.ACCEPT, None, None),
        ("I go take am", None, AnswerKind.ACCEPT, None, None),
        ("ok je prends, j'arrive dans 20 min", None, AnswerKind.ACCEPT, None, 20),
        ("D'accord", None, AnswerKind.ACCEPT, None, None),
        ("NON", None, AnswerKind.DECLINE, None, None),
        ("no", None, AnswerKind.DECLINE, None, None),
        ("I no fit", None, AnswerKind.DECLINE, None, None),
        ("I no fit take am today", None, AnswerKind.DECLINE, None, None),
        ("Non merci #15", None, AnswerKind.DECLINE, None, 15),
        ("je ne peux pas aujourd'hui", None, AnswerKind.DECLINE, None, None),
        ("OUI", "accept:42", AnswerKind.ACCEPT, 42, None),
        ("NON", "decline:42", AnswerKind.DECLINE, 42, None),
        ("", "accept_7", AnswerKind.ACCEPT, 7, None),
        ("OUI 12", "OUI", AnswerKind.ACCEPT, None, 12),
        ("c'est où exactement ?", None, AnswerKind.UNCLEAR, None, None),
        ("", None, AnswerKind.UNCLEAR, None, None),
    ],
)
def test_artisan_answers(body: str, payload: str | None, kind: AnswerKind, offer: int | None, ref: int | None) -> None:
    answer = parse_artisan_answer(body, payload)
    assert (answer.kind, answer.offer_id, answer.request_ref) == (kind, offer, ref)


@pytest.mark.parametrize(
    ("text", "status", "cancel"),
    [
        ("Où en est ma demande ?", True, False),
        ("Wetin happen to my request?", True, False),
        ("any update?", True, False),
        ("Pourquoi ma demande est annulée ? Où en est-elle ?", True, False),
        ("Annulez ma demande svp", False, True),
        ("cancel it", False, True),
        ("I no need am again", False, True),
        ("je n'en ai plus besoin", False, True),
        ("Surtout ne l'annulez pas", False, False),
        ("don't cancel", False, False),
        ("J'ai une fuite d'eau", False, False),
    ],
)
def test_customer_intents(text: str, status: bool, cancel: bool) -> None:
    assert (asks_for_status(text), asks_to_cancel(text)) == (status, cancel)

"""The artisan directory: numbers normalised and unique, trades and quartiers validated against the table,
paused never deleted, and a CSV import that is all or nothing with every bad line reported."""

from __future__ import annotations

import pytest

from bot.dispatch import CsvImportRefused, DuplicateArtisan, InvalidInput, NotFound
from bot.dispatch.directory import whatsapp_number
from tests.dispatch.conftest import World


def test_an_artisan_is_stored_normalised(world: World) -> None:
    directory = world.dispatch.directory

    artisan = directory.create(
        "  Jean-Pierre   Ngando ", "6 90 00 00 01", ["Plombier", "électroménager", "plomberie"], ["deido", "PK 8"]
    )

    assert artisan.as_dict() | {"created_at": 0, "updated_at": 0} == {
        "id": artisan.id, "name": "Jean-Pierre Ngando", "whatsapp": "+237690000001",
        "trades": ["plomberie", "electromenager"], "quartiers": ["Deïdo", "PK8"], "active": True,
        "created_at": 0, "updated_at": 0, "paused_at": None, "last_offered_at": None,
    }  # fmt: skip
    assert directory.find_by_number("whatsapp:+237 690 00 00 01") == artisan
    assert directory.find_by_number("+237690000002") is None
    assert world.dispatch.is_artisan("whatsapp:+237690000001") and not world.dispatch.is_artisan("+237699000001")


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+237 690-00-00-01", "+237690000001"),
        ("00237690000001", "+237690000001"),
        ("237690000001", "+237690000001"),
        ("690000001", "+237690000001"),
        ("whatsapp:+33612345678", "+33612345678"),
    ],
)
def test_numbers_written_any_usual_way(number: str, expected: str) -> None:
    assert whatsapp_number(number) == expected


def test_a_number_already_listed_is_refused_however_written(world: World) -> None:
    first = world.dispatch.directory.create("Alain", "+237690000001", "plomberie")

    with pytest.raises(DuplicateArtisan) as refused:
        world.dispatch.directory.create("Alain bis", "690 00 00 01", "électricité")

    assert refused.value.artisan_id == first.id
    assert str(refused.value) == f"whatsapp: +237690000001 is already in the directory (artisan {first.id})"
    other = world.dispatch.directory.create("Bruno", "+237690000002", "plomberie")
    with pytest.raises(DuplicateArtisan):
        world.dispatch.directory.update(other.id, {"whatsapp": "+237690000001"})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "", "whatsapp": "+237690000001", "trades": ["plomberie"]}, "name: a name is required"),
        ({"name": "A", "whatsapp": "12ab", "trades": ["plomberie"]}, "whatsapp: '12ab' is not a phone number"),
        ({"name": "A", "whatsapp": "12345", "trades": ["plomberie"]}, "give the number with its country code"),
        ({"name": "A", "whatsapp": "+237690000001", "trades": []}, "trades: at least one of plomberie"),
        ({"name": "A", "whatsapp": "+237690000001", "trades": ["menuiserie"]}, "trades: unknown trade 'menuiserie'"),
        ({"name": "A", "whatsapp": "+237690000001", "trades": [3]}, "trades: a list of strings"),
        (
            {"name": "A", "whatsapp": "+237690000001", "trades": ["plomberie"], "quartiers": ["Bastos"]},
            "quartiers: unknown quartier 'Bastos'",
        ),
    ],
)
def test_bad_fields_are_named(world: World, fields: dict, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        world.dispatch.directory.create(**fields)
    assert message in str(refused.value)
    assert world.dispatch.directory.list() == []


def test_list_filters_update_and_pause(world: World) -> None:
    directory = world.dispatch.directory
    alain = directory.create("Alain", "+237690000001", "plomberie", ["Akwa"])
    bruno = directory.create("Bruno", "+237690000002", "plomberie; électricité", "*")
    directory.create("Carine", "+237690000003", "électricité", "Deïdo")

    assert [a.name for a in directory.list(trade="Plombier")] == ["Alain", "Bruno"]
    assert [a.name for a in directory.list(quartier="deido")] == ["Bruno", "Carine"]  # Bruno serves the city

    updated = directory.update(alain.id, {"quartiers": ["Akwa", "Bonanjo"], "name": "Alain N."})
    assert updated.quartiers == ("Akwa", "Bonanjo") and updated.name == "Alain N." and updated.trades == ("plomberie",)
    paused = directory.pause(bruno.id)
    assert paused.active is False and paused.paused_at == world.clock()
    assert [a.name for a in directory.list(active=True)] == ["Alain N.", "Carine"]
    assert directory.get(bruno.id).name == "Bruno"  # kept
    assert directory.update(bruno.id, {"active": True}).paused_at is None
    with pytest.raises(InvalidInput, match="color: unknown field"):
        directory.update(alain.id, {"color": "blue"})
    with pytest.raises(NotFound):
        directory.pause(999)


CSV_GOOD = """nom,whatsapp,métiers,quartiers
Alain Plombier,+237 690 00 00 01,plomberie,"Akwa; Bonanjo"
Bruno,690000002,"plomberie, électricité",tout Douala

Carine,+237690000003,électroménager,"Rond-point Deido"
"""


def test_a_csv_imports_every_line(world: World) -> None:
    created = world.dispatch.directory.import_csv(CSV_GOOD)

    assert [(a.name, a.whatsapp, a.trades, a.quartiers) for a in created] == [
        ("Alain Plombier", "+237690000001", ("plomberie",), ("Akwa", "Bonanjo")),
        ("Bruno", "+237690000002", ("plomberie", "electricite"), ()),
        ("Carine", "+237690000003", ("electromenager",), ("Deïdo",)),
    ]


def test_a_csv_with_bad_lines_imports_nothing_and_says_every_line(world: World) -> None:
    world.dispatch.directory.create("Déjà là", "+237690000009", "plomberie")
    text = (
        "name,whatsapp,trades,quartiers\n"
        "Alain,+237690000001,plomberie,Akwa\n"
        ",+237690000002,plomberie,Akwa\n"
        "Carine,+237690000003,menuiserie,Akwa\n"
        "Didier,690000001,plomberie,Akwa\n"
        "Eric,+237690000009,plomberie,Bastos\n"
        "Fanny,+237690000009,plomberie,Akwa\n"
    )

    with pytest.raises(CsvImportRefused) as refused:
        world.dispatch.directory.import_csv(text)

    assert [str(error) for error in refused.value.errors] == [
        "line 3: name: a name is required",
        "line 4: trades: unknown trade 'menuiserie'; expected plomberie, electricite, electromenager",
        "line 5: whatsapp: +237690000001 is already on line 2",
        "line 6: quartiers: unknown quartier 'Bastos' (known: Akwa, Akwa Nord, Bonanjo, Bonapriso, Deïdo, Bonadibong,"
        " Bali, Bonabéri, ...)",
        f"line 7: whatsapp: +237690000009 is already in the directory (artisan {1})",
    ]
    assert [a.name for a in world.dispatch.directory.list()] == ["Déjà là"]


def test_a_csv_without_the_needed_columns_is_refused(world: World) -> None:
    with pytest.raises(CsvImportRefused, match="line 1: the header lacks whatsapp, trades"):
        world.dispatch.directory.import_csv("name,phone_number\nAlain,+237690000001\n")
    with pytest.raises(CsvImportRefused, match="line 1: the file is empty"):
        world.dispatch.directory.import_csv("")

from __future__ import annotations

import csv
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from bench.registrant_data import write_registrants_csv
from broadcast.errors import InvalidInput
from broadcast.importing import batch as import_batch
from broadcast.importing import topics as import_topics
from broadcast.importing.batch import existing_owners, write_batch
from broadcast.importing.csv_source import CsvRow, read_registrant_csv
from broadcast.importing.importer import batches_in_flight, import_registrants
from broadcast.importing.options import ImportOptions
from broadcast.importing.rows import PARALLEL_THRESHOLD, RowRules, ValidRow, validated_chunks
from broadcast.registrants import people as store
from broadcast.registrants.consent import ConsentSource
from broadcast.registrants.suppression import address_hash
from broadcast.store.tables import ConsentLedgerEntry, Registrant, Subscription
from broadcast.vocabulary import address_for
from tests.store.conftest import KEY
from tests.store.factories import draft

HEADER = "name,email,mobile,landline,postcode,channels,areas,topics,consented_at,source"
GOOD = [
    "Amira Khan,amira@example.com,07911 123456,,SW1A 1AA,sms;email,SW1A,burglary,2006-05-01,PMB",
    "Ben Jones,ben@example.org,,020 7946 0123,SE1 7PB,voice,SE1,fraud;burglary,01/02/2007,PMB",
]
BAD = [
    "Bad Phone,bp@example.com,0791,,SW1A 1AA,sms,SW1A,burglary,,PMB",  # line 4
    "Landline SMS,ls@example.com,,020 7946 0999,SW1A 1AA,sms,SW1A,burglary,,PMB",  # line 5
    "Bad Email,not-an-email,07920 111111,,SW1A 1AA,email,SW1A,burglary,,PMB",  # line 6
    "Bad Postcode,pc@example.com,07920 222222,,NOWHERE,email,SW1A,burglary,,PMB",  # line 7
    "Duplicate,AMIRA@example.com,,,SW1A 1AA,email,SW1A,burglary,,PMB",  # line 8
]


def options(**overrides: object) -> ImportOptions:
    values = {
        "topics": frozenset({"burglary", "fraud"}),
        "named_areas": frozenset(),
        "region": "GB",
        "key": KEY,
        "operator": "pc-import",
    }
    values.update(overrides)
    return ImportOptions(**values)  # type: ignore[arg-type]


def write(
    tmp_path: Path,
    lines: list[str],
    *,
    name: str = "pmb.csv",
    encoding: str = "utf-8",
    newline: str = "\n",
) -> Path:
    path = tmp_path / name
    path.write_bytes(newline.join([HEADER, *lines, ""]).encode(encoding))
    return path


def count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_good_rows_are_imported_with_their_consent_and_bad_rows_reported(
    engine: Engine, tmp_path: Path
) -> None:
    # Given a transfer file with good rows and every kind of bad row
    path = write(tmp_path, GOOD + BAD)
    rejects = tmp_path / "rejects.csv"
    # When it is imported
    report = import_registrants(engine=engine, path=path, options=options(), rejects_path=rejects)
    # Then the good rows are in, with active channels, and each bad row says why, by line
    assert (report.rows, report.created, len(report.rejected)) == (7, 2, 5)
    reasons = {row.line: " ".join(r) for row, r in report.rejected}
    assert "not a valid UK phone number" in reasons[4]
    assert "landline given for SMS" in reasons[5]
    assert "not a valid email address" in reasons[6]
    assert "not a valid UK postcode" in reasons[7]
    assert "duplicate inside the file (same email as line 2)" in reasons[8]
    with open(rejects, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["line"] for r in rows] == ["4", "5", "6", "7", "8"]
    assert rows[0]["name"] == "Bad Phone"
    with Session(engine) as session:
        ben = store.find_registrant(session=session, ref="020 7946 0123")
        assert store.views(session=session, registrants=[ben])[0]["channels"] == {"voice": "active"}
        events = session.scalars(select(ConsentLedgerEntry)).all()
    assert {(e.event, e.channel) for e in events} == {
        ("imported", "sms"),
        ("imported", "email"),
        ("imported", "voice"),
    }
    assert {(e.source, e.source_detail, e.origin) for e in events} == {
        ("csv-import", "pmb.csv", "PMB")
    }
    assert all(e.operator == "pc-import" and e.consented_at is not None for e in events)


def test_rerunning_an_interrupted_import_creates_no_duplicates(
    engine: Engine, tmp_path: Path
) -> None:
    # Given a file of which only the first part got in before an interruption
    full = write_registrants_csv(tmp_path / "full.csv", 300)
    lines = full.read_text().splitlines()
    part = tmp_path / "part.csv"
    part.write_text("\n".join(lines[:121]) + "\n")
    import_registrants(engine=engine, path=part, options=options(batch_size=50, topics=frozenset()))
    # When the whole file is imported again
    report = import_registrants(
        engine=engine, path=full, options=options(batch_size=50, topics=frozenset())
    )
    # Then only the missing rows are created and nothing is duplicated
    assert (report.created, report.unchanged, len(report.rejected)) == (180, 120, 0)
    assert count(engine, Registrant) == 300
    again = import_registrants(
        engine=engine, path=full, options=options(batch_size=50, topics=frozenset())
    )
    assert (again.created, again.updated, again.unchanged) == (0, 0, 300)
    assert count(engine, Registrant) == 300


def test_a_changed_row_updates_the_existing_registrant(engine: Engine, tmp_path: Path) -> None:
    import_registrants(engine=engine, path=write(tmp_path, GOOD[:1]), options=options())
    changed = (
        GOOD[0].replace("Amira Khan", "Amira Khan-Smith").replace("sms;email", "sms;email;voice")
    )
    report = import_registrants(
        engine=engine, path=write(tmp_path, [changed], name="v2.csv"), options=options()
    )
    assert (report.created, report.updated) == (0, 1)
    with Session(engine) as session:
        amira = store.find_registrant(session=session, ref="amira@example.com")
        assert amira.name == "Amira Khan-Smith"
        assert set(store.subscriptions(session=session, registrant_id=amira.id)) == {
            "sms",
            "email",
            "voice",
        }


def test_dry_run_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    report = import_registrants(
        engine=engine, path=write(tmp_path, GOOD + BAD), options=options(dry_run=True)
    )
    assert (report.created, len(report.rejected), report.dry_run) == (2, 5, True)
    assert count(engine, Registrant) == 0
    assert count(engine, Subscription) == 0
    assert count(engine, ConsentLedgerEntry) == 0


def test_suppressed_addresses_are_rejected(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    import_registrants(engine=engine, path=path, options=options())
    with Session(engine) as session:
        amira = store.find_registrant(session=session, ref="amira@example.com")
        store.unsubscribe(
            session=session,
            registrant=amira,
            channels=["sms"],
            key=KEY,
            source=ConsentSource("cli"),
        )
        store.erase(session=session, registrant=amira, key=KEY, source=ConsentSource("cli"))
        session.commit()
    report = import_registrants(engine=engine, path=path, options=options())
    assert [(row.line, reasons) for row, reasons in report.rejected] == [
        (2, ["suppressed address for email, sms"])
    ]


@pytest.mark.parametrize(
    ("encoding", "newline"), [("utf-8-sig", "\r\n"), ("utf-8", "\r\n"), ("utf-8-sig", "\n")]
)
def test_bom_and_windows_line_endings(
    engine: Engine, tmp_path: Path, encoding: str, newline: str
) -> None:
    path = write(tmp_path, GOOD, encoding=encoding, newline=newline)
    report = import_registrants(engine=engine, path=path, options=options())
    assert (report.created, report.rejected) == (2, [])


def test_extra_columns_are_ignored_with_a_warning(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    path.write_text(HEADER + ",shoe_size\n" + GOOD[0] + ",9\n")
    report = import_registrants(engine=engine, path=path, options=options())
    assert report.ignored_columns == ["shoe_size"] and report.created == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "not a CSV file"),
        (b"name;email\nJo;jo@example.com\n", "does not look like a registrant CSV"),
        ("name,email,channels\nJosé,j@example.com,email\n".encode("latin-1"), "not UTF-8"),
        (b"", "is empty"),
        (b'name,email,channels\n"unterminated,jo@example.com,email\n', "not a valid CSV"),
        ("name,email,channels\nJo,jo@example.com,email\n".encode("utf-16"), "is UTF-16"),
        ("name,email,channels\nJo,jo@example.com,email\n".encode("utf-16-le"), "is UTF-16"),
        # Far into the file, after good rows: nothing is written before the whole file is read
        (
            f"{HEADER}\n{GOOD[0]}\n{',' * 70_000}\n".encode(),
            "line 3 is longer than 65,536 bytes",
        ),
        (f"{HEADER}\n{GOOD[0]}\n{GOOD[1]}{',' * 300}\n".encode(), "line 3 has 310 cells"),
        (
            f"{HEADER}\n{GOOD[0]}\n{GOOD[1]}\n".encode() + b"Jos\xe9,,,\n",
            r"not UTF-8 text \(line 4,",
        ),
    ],
)
def test_a_file_that_is_not_a_registrant_csv_is_refused_clearly(
    engine: Engine, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=message):
        import_registrants(engine=engine, path=path, options=options(batch_size=1))
    assert count(engine, Registrant) == 0


def many_rows(count: int, start: int = 0) -> list[str]:
    return [
        f"Person {i},person{i}@example.com,,,SW1A 1AA,email,SW1A,burglary,,PMB"
        for i in range(start, start + count)
    ]


def test_control_characters_anywhere_reject_their_row_by_line_and_field(
    engine: Engine, tmp_path: Path
) -> None:
    # Given a file whose bad rows come well after its first 4 KB (which alone used to be
    # checked): a NUL in a name, an escape character in an email, a line break inside a
    # quoted name, and a NUL in a column the import does not use
    lines = many_rows(100)
    lines[60] = "Eve\x00Null,eve@example.com,,,SW1A 1AA,email,SW1A,burglary,,PMB"
    lines[70] = "Esc,esc\x1b@example.com,,,SW1A 1AA,email,SW1A,burglary,,PMB"
    lines[80] = '"Eve\r\nBcc: x@evil.example",crlf@example.com,,,SW1A 1AA,email,SW1A,burglary,,PMB'
    lines[90] = "Tab\tName,tab@example.com,,,SW1A 1AA,email,SW1A,burglary,,\x00PMB"
    path = write(tmp_path, lines)
    assert path.stat().st_size > 4096 * 1.5
    # When it is imported
    report = import_registrants(engine=engine, path=path, options=options())
    # Then each such row is rejected with its line and the field, and the others are imported
    reasons = {row.line: reasons for row, reasons in report.rejected}
    assert reasons == {
        62: ["name contains a NUL (0x00)"],
        72: ["email contains a control character (0x1B)"],
        83: ["name contains a carriage return (0x0D)"],  # the record ends on line 83
        93: ["source contains a NUL (0x00)"],
    }
    assert report.created == 96 and count(engine, Registrant) == 96
    with Session(engine) as session:
        names = session.scalars(select(Registrant.name)).all()
    assert not [n for n in names if "\x00" in (n or "") or "\r" in (n or "")]
    assert "Tab\tName" not in names  # a tab is allowed; that row was refused for its source


def test_a_row_with_more_cells_than_the_header_is_warned_about_by_line(
    engine: Engine, tmp_path: Path
) -> None:
    # Given rows with 12 cells under a 10-column header (trailing empty cells are not counted)
    path = write(tmp_path, [GOOD[0] + ",x,y", GOOD[1] + ",,"])
    report = import_registrants(engine=engine, path=path, options=options())
    assert report.created == 2
    assert (report.extra_cell_rows, report.extra_cell_lines) == (1, [2])


def test_a_dry_run_leaves_the_next_registrant_id_unchanged(engine: Engine, tmp_path: Path) -> None:
    # Given dry runs of a file of new registrants
    path = write(tmp_path, GOOD)
    for _ in range(2):
        report = import_registrants(engine=engine, path=path, options=options(dry_run=True))
        assert report.created == 2
    # When the file is then imported for real
    import_registrants(engine=engine, path=path, options=options())
    # Then the registrants get the first ids, as if the dry runs had never happened
    with Session(engine) as session:
        assert sorted(session.scalars(select(Registrant.id)).all()) == [1, 2]


def test_parallel_validation_gives_the_same_result(engine: Engine, tmp_path: Path) -> None:
    # Given a file big enough to be validated by worker processes, with a bad row inside
    path = write_registrants_csv(tmp_path / "big.csv", 20_500)
    with path.open("a") as handle:
        handle.write("Bad Row,bad@,07911,,XX,sms,SW1A,burglary,,PMB\n")
        handle.write("Nul\x00Row,nul@example.com,,,SW1A 1AA,email,SW1A,burglary,,PMB\n")
    report = import_registrants(
        engine=engine, path=path, options=options(workers=2, topics=frozenset())
    )
    assert report.created == 20_500
    assert [row.line for row, _ in report.rejected] == [20_502, 20_503]
    assert report.rejected[1][1] == ["name contains a NUL (0x00)"]
    if engine.dialect.name == "postgresql":
        # And a large import leaves the planner statistics for what it filled (ANALYZE)
        with engine.connect() as connection:
            estimated = connection.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE relname = 'registrant'"
            ).scalar_one()
        assert estimated == 20_500


def test_forked_validation_answers_exactly_as_inline_validation(tmp_path: Path) -> None:
    # Given a file big enough for the worker processes, with a bad row and a consent date
    path = write_registrants_csv(tmp_path / "big.csv", PARALLEL_THRESHOLD + 100)
    with path.open("a") as handle:
        handle.write("Bad Row,bad@,07911,,XX,sms,SW1A,burglary,,PMB\n")
        handle.write("Ann,ann@example.org,,,SE1 7PB,email,SE1,fraud,31/01/2024,Old list\n")
    rows = list(read_registrant_csv(path).rows())
    rules = RowRules(frozenset({"fraud", "burglary"}), frozenset(), "GB", b"key")
    # When it is validated in this process and by two forked workers
    inline = [r for chunk in validated_chunks(rows, rules, 5000, workers=0) for r in chunk]
    forked = [r for chunk in validated_chunks(rows, rules, 5000, workers=2) for r in chunk]
    # Then every row gets the same answer, down to the consent date and the address hashes
    assert forked == inline
    assert len(inline) == len(rows)
    last = inline[-1]
    assert isinstance(last, ValidRow)
    assert last.consented_at == datetime(2024, 1, 31, tzinfo=UTC) and last.origin == "Old list"
    assert last.hashes == {"email": address_hash("ann@example.org", b"key")}
    assert not isinstance(inline[-2], ValidRow) and inline[-2][0].line == len(rows)


@pytest.mark.parametrize("drop", [False, True])
def test_forked_validation_maps_and_counts_unknown_topics_as_inline_validation(
    tmp_path: Path, drop: bool
) -> None:
    # Given a file big enough for the worker processes, rules that rename a topic, and a force
    # that lacks some of the file's topics
    path = write_registrants_csv(tmp_path / "big.csv", PARALLEL_THRESHOLD + 100)
    source = read_registrant_csv(path)
    rows = list(source.rows())
    rules = RowRules(
        frozenset({"fraud", "burglary", "community"}),
        frozenset(),
        "GB",
        b"key",
        topic_map=(("e-crime", "fraud"),),
        drop_unknown_topics=drop,
        header=tuple(source.header),
    )
    # When it is validated in this process and by two forked workers
    counted: dict[int, Counter[str]] = {0: Counter(), 2: Counter()}
    answers = {
        workers: [
            r
            for chunk in validated_chunks(rows, rules, 5000, workers, counted[workers])
            for r in chunk
        ]
        for workers in (0, 2)
    }
    # Then both map, reject or drop, and count the same, each unknown topic once per row
    assert answers[2] == answers[0]
    assert counted[2] == counted[0]
    assert set(counted[0]) == {
        "missing-person",
        "anti-social-behaviour",
        "road-safety",
        "vehicle-crime",
    }
    unknown = frozenset(counted[0])
    valid = [r for r in answers[0] if isinstance(r, ValidRow)]
    assert all(not unknown & set(r.topics) and "e-crime" not in r.topics for r in valid)
    rejected = len(answers[0]) - len(valid)
    assert (rejected == 0) if drop else (rejected >= max(counted[0].values()))


# Columns of the hand-made rows below: name, one contact point, channels.
BY_EMAIL = ((0, "name"), (1, "email"), (2, "channels"))
BY_MOBILE = ((0, "name"), (1, "mobile"), (2, "channels"))


def test_a_batch_waits_for_an_earlier_batch_updating_the_same_registrant(
    engine: Engine, tmp_path: Path
) -> None:
    if engine.dialect.name != "postgresql":
        assert batches_in_flight(engine) == 1  # SQLite has one writer: batches take turns
        return
    assert batches_in_flight(engine) == 2
    # Given a registrant, and two batches whose rows match them by email and by mobile
    path = write(
        tmp_path, ["Old Name,old@example.org,07911 123456,,SW1A 1AA,sms;email,SW1A,fraud,,"]
    )
    import_registrants(engine=engine, path=path, options=options())
    rules = RowRules(frozenset({"fraud"}), frozenset(), "GB", KEY)
    first, second = (
        chunk[0]
        for chunk in validated_chunks(
            [
                CsvRow(2, ["New Name", "old@example.org", "email"], BY_EMAIL),
                CsvRow(3, ["", "07911 123456", "sms"], BY_MOBILE),
            ],
            rules,
            chunk_size=1,
            workers=0,
        )
    )
    # When the first batch has matched and renamed the registrant but not yet committed
    seen: list[str | None] = []
    later = threading.Thread(target=lambda: seen.append(_owner_name(engine, second)))
    with engine.connect() as earlier:
        outcome = write_batch(earlier, [first], "second.csv", options())
        assert outcome.updated == 1
        later.start()
        # Then the second batch's lookup waits for it
        later.join(timeout=1.0)
        waited = later.is_alive() and seen == []
        earlier.commit()
    # And once it commits, reads the registrant as the first batch left it
    later.join(timeout=10)
    assert waited
    assert seen == ["New Name"]


def _owner_name(engine: Engine, row: ValidRow) -> str | None:
    with engine.connect() as connection:
        owners = existing_owners(connection, [row])
        connection.rollback()
    return owners[row.mobile].name


def test_a_contact_point_taken_while_the_batch_was_written_updates_that_registrant(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a row whose email someone signs up with on the web between the batch's lookup of
    # existing registrants and its insert (the lookup is made to miss them, once)
    with Session(engine) as session:
        store.add_registrant(
            session=session,
            draft=draft(name="Web Signup", email="amira@example.com", mobile="", channels="email"),
            source=ConsentSource(source="web"),
            key=KEY,
        )
        session.commit()
    real_lookup = import_batch.existing_owners
    lookups: list[int] = []

    def lookup_before_the_signup(connection, items):  # type: ignore[no-untyped-def]
        lookups.append(len(lookups))
        return {} if len(lookups) == 1 else real_lookup(connection, items)

    monkeypatch.setattr(import_batch, "existing_owners", lookup_before_the_signup)
    path = write(tmp_path, GOOD[:1])
    # When the file is imported
    report = import_registrants(engine=engine, path=path, options=options())
    # Then the unique key refused the first insert, and the batch was looked up again and
    # updated the web registrant instead of failing the import or duplicating them
    assert lookups == [0, 1]
    assert (report.created, report.updated, report.rejected) == (0, 1, [])
    assert count(engine, Registrant) == 1


ALICE = "Alice Smith,alice@example.com,,020 7946 1234,SW1A 1AA,email;voice,SW1A,burglary,,PMB"
BOB = "Bob Jones,bob@example.org,07911 200123,020 7946 1234,SW1A 1AA,sms;email,SW1A,fraud,,PMB"


def test_a_household_sharing_a_landline_keeps_every_person(engine: Engine, tmp_path: Path) -> None:
    # Given Alice, imported with her email and the household's landline
    import_registrants(engine=engine, path=write(tmp_path, [ALICE]), options=options())
    # When a later file holds only Bob: another name, email and mobile, the same landline
    report = import_registrants(
        engine=engine, path=write(tmp_path, [BOB], name="later.csv"), options=options()
    )
    # Then Bob is a new registrant and Alice is untouched, her consent still hers
    assert (report.created, report.updated, report.rejected) == (1, 0, [])
    with Session(engine) as session:
        alice = store.find_registrant(session=session, ref="alice@example.com")
        bob = store.find_registrant(session=session, ref="bob@example.org")
        assert alice.id != bob.id
        assert (alice.name, alice.mobile, alice.landline) == ("Alice Smith", None, "+442079461234")
        assert (bob.name, bob.landline) == ("Bob Jones", "+442079461234")
        assert set(store.subscriptions(session=session, registrant_id=alice.id)) == {
            "email",
            "voice",
        }
        ledger = session.scalars(select(ConsentLedgerEntry)).all()
        assert {(e.registrant_id, e.channel, e.source_detail) for e in ledger} == {
            (alice.id, "email", "pmb.csv"),
            (alice.id, "voice", "pmb.csv"),
            (bob.id, "sms", "later.csv"),
            (bob.id, "email", "later.csv"),
        }


def test_a_household_in_one_file_is_two_registrants(engine: Engine, tmp_path: Path) -> None:
    report = import_registrants(
        engine=engine, path=write(tmp_path, [ALICE, BOB]), options=options()
    )
    assert (report.created, report.rejected) == (2, [])
    assert count(engine, Registrant) == 2


def test_duplicates_and_conflicts_name_the_field_that_matched(
    engine: Engine, tmp_path: Path
) -> None:
    # Given Alice (by email) and Bob (by mobile) already imported
    import_registrants(engine=engine, path=write(tmp_path, [ALICE, BOB]), options=options())
    with Session(engine) as session:
        alice = store.find_registrant(session=session, ref="alice@example.com")
        bob = store.find_registrant(session=session, ref="07911 200123")
    # When a file has a row with Alice's email and Bob's mobile, and rows repeating a mobile
    # and an email inside the file
    path = write(
        tmp_path,
        [
            "Mixed Up,alice@example.com,07911 200123,,SW1A 1AA,sms;email,SW1A,fraud,,PMB",
            "Cara Lee,cara@example.com,07911 200456,,SW1A 1AA,sms,SW1A,fraud,,PMB",
            "Cara Again,other@example.com,07911 200456,,SW1A 1AA,sms,SW1A,fraud,,PMB",
            "Cara Email,CARA@example.com,,,SW1A 1AA,email,SW1A,fraud,,PMB",
        ],
        name="third.csv",
    )
    report = import_registrants(engine=engine, path=path, options=options())
    # Then each rejection says which field matched
    reasons = {row.line: "; ".join(r) for row, r in report.rejected}
    assert reasons == {
        2: f"email matches registrant {alice.id} and mobile matches registrant {bob.id}: "
        "they are different people",
        4: "duplicate inside the file (same mobile as line 3)",
        5: "duplicate inside the file (same email as line 3)",
    }
    assert report.created == 1


def test_the_same_number_as_mobile_and_landline_means_calls_to_the_mobile(
    engine: Engine, tmp_path: Path
) -> None:
    # Given a row giving one mobile number as both mobile and landline, for SMS and voice
    row = "Dee Kay,dee@example.com,07911 200789,07911200789,SW1A 1AA,sms;voice,SW1A,fraud,,PMB"
    report = import_registrants(engine=engine, path=write(tmp_path, [row]), options=options())
    # Then it is imported, with voice going to the mobile
    assert (report.created, report.rejected) == (1, [])
    with Session(engine) as session:
        dee = store.find_registrant(session=session, ref="dee@example.com")
        assert (dee.mobile, dee.landline) == ("+447911200789", None)
        assert address_for("voice", dee) == "+447911200789"
        assert set(store.subscriptions(session=session, registrant_id=dee.id)) == {"sms", "voice"}


TOPIC_ROWS = [
    "Eve A,eve@example.com,,,SW1A 1AA,email,SW1A,antisocial-behaviour;fraud,,PMB",
    "Fay B,fay@example.com,,,SW1A 1AA,email,SW1A,Antisocial Behaviour,,PMB",
    "Gus C,gus@example.com,,,SW1A 1AA,email,SW1A,shoplifting,,PMB",
    "Hal D,hal@example.com,,,SW1A 1AA,email,SW1A,burglary,,PMB",
]
FORCE_TOPICS = frozenset({"anti-social-behaviour", "fraud", "burglary"})


def test_unknown_topics_reject_by_default_and_are_listed_once_with_a_suggestion(
    engine: Engine, tmp_path: Path
) -> None:
    report = import_registrants(
        engine=engine, path=write(tmp_path, TOPIC_ROWS), options=options(topics=FORCE_TOPICS)
    )
    assert report.created == 1
    assert sorted(row.line for row, _ in report.rejected) == [2, 3, 4]
    assert report.unknown_topics == {"antisocial-behaviour": 2, "shoplifting": 1}
    lines = import_topics.summary(report.unknown_topics, FORCE_TOPICS, dropped=False)
    assert lines[0] == (
        "unknown topic 'antisocial-behaviour' in 2 rows (rejected) "
        "(did you mean anti-social-behaviour?)"
    )
    assert lines[1] == "unknown topic 'shoplifting' in 1 row (rejected)"


def test_map_topic_renames_and_drop_leaves_unknown_topics_out(
    engine: Engine, tmp_path: Path
) -> None:
    mapping = import_topics.parse_topic_map(
        ["Antisocial-Behaviour=anti-social-behaviour"], FORCE_TOPICS
    )
    report = import_registrants(
        engine=engine,
        path=write(tmp_path, TOPIC_ROWS),
        options=options(topics=FORCE_TOPICS, topic_map=mapping, drop_unknown_topics=True),
    )
    assert (report.created, report.rejected) == (4, [])
    assert report.unknown_topics == {"shoplifting": 1}
    with Session(engine) as session:
        topics = {view["email"]: view["topics"] for view in store.iter_views(session=session)}
    assert topics == {
        "eve@example.com": ["anti-social-behaviour", "fraud"],
        "fay@example.com": ["anti-social-behaviour"],
        "gus@example.com": [],
        "hal@example.com": ["burglary"],
    }
    with pytest.raises(InvalidInput, match="did you mean anti-social-behaviour"):
        import_topics.parse_topic_map(["asb=antisocial-behavior"], FORCE_TOPICS)


def test_a_language_column_sets_new_registrants_language(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "welsh.csv"
    path.write_text(
        HEADER + ",language\n"
        "Dafydd Jones,dafydd@example.cymru,,,SA1 1AA,email,SA1,burglary,,PMB,cy\n"
        "Siân Davies,sian@example.cymru,,,SA1 1AA,email,SA1,burglary,,PMB,CY-GB\n"
        "Rhys Evans,rhys@example.cymru,,,SA1 1AA,email,SA1,burglary,,PMB,\n"
        "Bad Tag,bad@example.cymru,,,SA1 1AA,email,SA1,burglary,,PMB,Welsh please\n"
    )
    report = import_registrants(engine=engine, path=path, options=options())
    assert report.created == 3 and not report.ignored_columns
    assert [(row.line, " ".join(r)) for row, r in report.rejected] == [
        (5, "language must be a language code like en, cy or cy-GB")
    ]
    with Session(engine) as session:
        languages = dict(session.exec(select(Registrant.email, Registrant.language)).all())
    assert languages == {
        "dafydd@example.cymru": "cy",
        "sian@example.cymru": "cy-gb",
        "rhys@example.cymru": "en",
    }

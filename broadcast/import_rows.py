"""Validating the rows of an import file, in forked worker processes when the file is large.

Validation (phone, email and postcode parsing, hashing each address for the suppression list) is
most of an import's CPU time, so large files are validated in parallel while the importing
process writes earlier batches. Workers see the rows through fork and answer each chunk with one
marshal blob of plain tuples: pickling rich objects cost more than validating them.
"""

from __future__ import annotations

import marshal
import multiprocessing
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from typing import NamedTuple

from broadcast import suppression
from broadcast.csv_source import CsvRow, Rejected
from broadcast.errors import InvalidInput
from broadcast.validation import InvalidRegistrant, parse_registrant

# Below this many rows a process pool costs more to start than it saves.
PARALLEL_THRESHOLD = 20_000


class ValidRow(NamedTuple):
    """A row that passed validation: its normalised registrant, ready to write."""

    row: CsvRow
    name: str | None
    postcode: str | None
    email: str | None
    mobile: str | None
    landline: str | None
    language: str
    channels: tuple[str, ...]  # sorted
    areas: tuple[str, ...]
    topics: tuple[str, ...]
    consented_at: datetime | None
    origin: str | None
    hashes: dict[str, str]  # channel -> keyed hash of its address (suppression and ledger)

    def contact_points(self) -> list[str]:
        return [p for p in (self.email, self.mobile, self.landline) if p]

    def identity_points(self) -> list[tuple[str, str]]:
        """(field, value) of what identifies the person: the email and the mobile. A landline
        may be a household's, shared by several registrants, so it never identifies anyone."""
        points = []
        if self.email:
            points.append(("email", self.email))
        if self.mobile:
            points.append(("mobile", self.mobile))
        return points


class RowRules(NamedTuple):
    topics: frozenset[str]
    named_areas: frozenset[str]
    region: str
    key: bytes  # the suppression list's key
    topic_map: tuple[tuple[str, str], ...] = ()  # --map-topic old=new
    drop_unknown_topics: bool = False  # --unknown-topics drop


def parse_consented_at(raw: str) -> datetime | None:
    """ISO 8601 date or date-time, or the UK's dd/mm/yyyy; naive values are taken as UTC."""
    text = raw.strip()
    if not text:
        return None
    for parse in (datetime.fromisoformat, lambda t: datetime.strptime(t, "%d/%m/%Y")):
        try:
            value = parse(text)
        except ValueError:
            continue
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    raise InvalidInput(f"consented_at '{raw}' is not a date (use YYYY-MM-DD or DD/MM/YYYY)")


def _check_rows(rows: Sequence[CsvRow], first_index: int, rules: RowRules) -> list[tuple]:
    """Plain tuples (marshal-able): (index, problems, unknown topics) for a bad row, or (index,
    the ValidRow fields after `row` with consented_at as ISO text, dropped topics) for a good
    one."""
    answers: list[tuple] = []
    hashed = suppression.hasher_for(rules.key)
    topic_map = dict(rules.topic_map)
    for index, row in enumerate(rows, first_index):
        fields = row.fields
        problems: list[str] = []
        unknown: tuple[str, ...] = ()
        draft = None
        try:
            draft = parse_registrant(
                fields,
                topics=rules.topics,
                named_areas=rules.named_areas,
                region=rules.region,
                topic_map=topic_map,
                drop_unknown_topics=rules.drop_unknown_topics,
            )
        except InvalidRegistrant as exc:
            problems += exc.problems
            unknown = exc.unknown_topics
        consented_at = None
        try:
            consented_at = parse_consented_at(fields.get("consented_at", ""))
        except InvalidInput as exc:
            problems.append(str(exc))
        if problems or draft is None:
            answers.append((index, problems, unknown))
            continue
        answers.append(
            (
                index,
                draft.name,
                draft.postcode,
                draft.email,
                draft.mobile,
                draft.landline,
                draft.language,
                tuple(sorted(draft.channels)),
                draft.areas,
                draft.topics,
                consented_at.isoformat() if consented_at else None,
                fields.get("source", "").strip()[:120] or None,
                {c: hashed(a) for c, a in draft.addresses().items()},
                draft.dropped_topics,
            )
        )
    return answers


def _from_answers(
    rows: Sequence[CsvRow], answers: list[tuple], unknown_topics: Counter[str] | None
) -> list[ValidRow | Rejected]:
    results: list[ValidRow | Rejected] = []
    for answer in answers:
        row = rows[answer[0]]
        if len(answer) == 3:
            results.append((row, answer[1]))
            if answer[2] and unknown_topics is not None:
                unknown_topics.update(answer[2])
            continue
        consented_at = datetime.fromisoformat(answer[10]) if answer[10] else None
        results.append(ValidRow(row, *answer[1:10], consented_at, answer[11], answer[12]))
        if answer[13] and unknown_topics is not None:
            unknown_topics.update(answer[13])
    return results


# Set in the parent just before the pool forks, so workers read the rows without pickling them.
_FORKED_ROWS: Sequence[CsvRow] = ()
_FORKED_RULES: RowRules | None = None


def _check_forked_range(start: int, stop: int) -> bytes:
    """In a worker: validate rows[start:stop]."""
    assert _FORKED_RULES is not None
    return marshal.dumps(_check_rows(_FORKED_ROWS[start:stop], start, _FORKED_RULES))


def validated_chunks(
    rows: Sequence[CsvRow],
    rules: RowRules,
    chunk_size: int,
    workers: int,
    unknown_topics: Counter[str] | None = None,
) -> Iterator[list[ValidRow | Rejected]]:
    """Each chunk of rows validated, in file order: valid rows and (row, problems) rejects.
    With workers >= 1, large files are validated by that many forked processes. Topics that are
    not the force's are counted in `unknown_topics` (rows per topic), rejected or dropped."""
    global _FORKED_ROWS, _FORKED_RULES
    bounds = [(i, min(i + chunk_size, len(rows))) for i in range(0, len(rows), chunk_size)]
    can_fork = "fork" in multiprocessing.get_all_start_methods()
    if workers < 1 or len(rows) < PARALLEL_THRESHOLD or not can_fork:
        for start, stop in bounds:
            yield _from_answers(rows, _check_rows(rows[start:stop], start, rules), unknown_topics)
        return
    _FORKED_ROWS, _FORKED_RULES = rows, rules
    context = multiprocessing.get_context("fork")
    try:
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            starts, stops = zip(*bounds, strict=True)
            for blob in pool.map(_check_forked_range, starts, stops):
                yield _from_answers(rows, marshal.loads(blob), unknown_topics)
    finally:
        _FORKED_ROWS, _FORKED_RULES = (), None

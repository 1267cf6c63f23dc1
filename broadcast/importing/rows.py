"""Validating the rows of an import file, in forked worker processes when the file is large.

Validation (phone, email and postcode parsing, hashing each address for the suppression list) is
most of an import's CPU time, so large files are validated in parallel while the importing
process reads the next rows. Rows go to the workers and answers come back as marshal blobs of
plain lists and tuples: pickling rich objects cost more than validating them. Only a few chunks
are in flight at once, so memory stays flat however long the file is.
"""

from __future__ import annotations

import marshal
import multiprocessing
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import datetime
from itertools import chain, islice
from typing import Any, NamedTuple

from broadcast.clock import aware
from broadcast.errors import InvalidInput
from broadcast.importing.csv_source import CsvRow, Rejected
from broadcast.registrants import suppression
from broadcast.registrants.validation import InvalidRegistrant, parse_registrant
from broadcast.text_rules import describe_control_character, has_control_characters

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
    header: tuple[str, ...] = ()  # the file's column names, to name a field in a rejection


def control_character_problems(values: Sequence[str], header: Sequence[str]) -> list[str]:
    """One problem per cell holding a control character (any cell: every byte is checked)."""
    problems = []
    for position, value in enumerate(values):
        found = describe_control_character(value)
        if found:
            name = (header[position] if position < len(header) else "") or f"column {position + 1}"
            problems.append(f"{name} contains a {found}")
    return problems


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
        return aware(value)
    raise InvalidInput(f"consented_at '{raw}' is not a date (use YYYY-MM-DD or DD/MM/YYYY)")


# One row's verdict from _check_rows, as a plain tuple so it crosses process boundaries cheaply:
# (index, problems, unknown topics) for a bad row, or (index, ValidRow fields..., dropped topics).
Answer = tuple[Any, ...]


def _check_rows(rows: Sequence[CsvRow], first_index: int, rules: RowRules) -> list[Answer]:
    """Plain tuples (marshal-able): (index, problems, unknown topics) for a bad row, or (index,
    the ValidRow fields after `row` with consented_at as ISO text, dropped topics) for a good
    one."""
    answers: list[Answer] = []
    hashed = suppression.hasher_for(rules.key)
    topic_map = dict(rules.topic_map)
    for index, row in enumerate(rows, first_index):
        if has_control_characters("".join(row.values)):
            answers.append((index, control_character_problems(row.values, rules.header), ()))
            continue
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


def valid_row(row: CsvRow, answer: Answer) -> ValidRow:
    """The ValidRow for a good row's answer (see _check_rows)."""
    consented_at = datetime.fromisoformat(answer[10]) if answer[10] else None
    return ValidRow._make((row, *answer[1:10], consented_at, answer[11], answer[12]))


def is_rejection(answer: Answer) -> bool:
    """Whether an answer of _check_rows is a bad row's (index, problems, unknown topics)."""
    return len(answer) == 3


def count_unknown_topics(answer: Answer, unknown_topics: Counter[str]) -> None:
    """Count the topics not the force's that one answer names: a bad row's rejected ones, or a
    good row's dropped ones (--unknown-topics drop); each at most once per row."""
    topics = answer[2] if is_rejection(answer) else answer[13]
    if topics:
        unknown_topics.update(topics)


def _from_answers(
    rows: Sequence[CsvRow], answers: list[Answer], unknown_topics: Counter[str] | None
) -> list[ValidRow | Rejected]:
    results: list[ValidRow | Rejected] = []
    for answer in answers:
        row = rows[answer[0]]
        results.append((row, answer[1]) if is_rejection(answer) else valid_row(row, answer))
        if unknown_topics is not None:
            count_unknown_topics(answer, unknown_topics)
    return results


# Set in the parent just before the pool forks: the workers' rules and the file's columns.
_FORKED_RULES: RowRules | None = None
_FORKED_COLUMNS: tuple[tuple[int, str], ...] = ()


def _check_forked_chunk(blob: bytes) -> bytes:
    """In a worker: validate one chunk of rows, sent as a marshal blob of their values."""
    assert _FORKED_RULES is not None
    rows = [CsvRow(0, values, _FORKED_COLUMNS) for values in marshal.loads(blob)]
    return marshal.dumps(_check_rows(rows, 0, _FORKED_RULES))


def _chunks(rows: Iterable[CsvRow], size: int) -> Iterator[list[CsvRow]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def validated_chunks(
    rows: Iterable[CsvRow],
    rules: RowRules,
    chunk_size: int,
    workers: int,
    unknown_topics: Counter[str] | None = None,
) -> Iterator[list[ValidRow | Rejected]]:
    """Each chunk of rows validated, in file order: valid rows and (row, problems) rejects.
    Topics that are not the force's are counted in `unknown_topics` (rows per topic), rejected
    or dropped."""
    for chunk, answers in checked_chunks(rows, rules, chunk_size, workers):
        yield _from_answers(chunk, answers, unknown_topics)


def checked_chunks(
    rows: Iterable[CsvRow], rules: RowRules, chunk_size: int, workers: int
) -> Iterator[tuple[list[CsvRow], list[Answer]]]:
    """Each chunk of rows with its answers as plain tuples (_check_rows), in file order.
    With workers >= 1, files of PARALLEL_THRESHOLD rows or more are validated by that many
    forked processes, at most two chunks per worker ahead of the caller."""
    global _FORKED_RULES, _FORKED_COLUMNS
    iterator = iter(rows)
    first = list(islice(iterator, PARALLEL_THRESHOLD))
    can_fork = "fork" in multiprocessing.get_all_start_methods()
    if workers < 1 or len(first) < PARALLEL_THRESHOLD or not can_fork:
        for chunk in _chunks(chain(first, iterator), chunk_size):
            yield chunk, _check_rows(chunk, 0, rules)
        return
    _FORKED_RULES, _FORKED_COLUMNS = rules, first[0].columns
    context = multiprocessing.get_context("fork")
    try:
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            pending: deque[tuple[list[CsvRow], Future[bytes]]] = deque()
            for chunk in _chunks(chain(first, iterator), chunk_size):
                blob = marshal.dumps([row.values for row in chunk])
                pending.append((chunk, pool.submit(_check_forked_chunk, blob)))
                if len(pending) > 2 * workers:
                    done, answer = pending.popleft()
                    yield done, marshal.loads(answer.result())
            while pending:
                done, answer = pending.popleft()
                yield done, marshal.loads(answer.result())
    finally:
        _FORKED_RULES, _FORKED_COLUMNS = None, ()

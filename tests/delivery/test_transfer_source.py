"""The transfer notice finds those imported from a file by its name or the path it was
imported from, and says which sources there are when it finds nobody (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from broadcast.alerts import compose as alerts
from broadcast.delivery.planning import Targeting
from broadcast.errors import InvalidInput
from tests.delivery.factories import Person, add_people


def test_the_notice_matches_the_file_by_path_name_or_origin(runtime) -> None:  # type: ignore[no-untyped-def]
    add_people(runtime.engine, [Person(imported_from="r.csv", channels=("email",))] * 2)
    add_people(runtime.engine, [Person(channels=("email",))])

    def reached(source: str) -> int:
        preview = alerts.preview_alert(
            runtime, "transfer-notice", {}, ("email",), Targeting(source=source)
        )
        return preview.recipients["email"]

    assert reached("r.csv") == 2
    assert reached("/home/pc/exports/r.csv") == 2
    assert reached("exports/r.csv") == 2
    assert reached("/home/pc/exports/other.csv") == 0
    # And a notice that reaches nobody is refused, naming the sources imported from
    targeting = Targeting(source="/tmp/other.csv")
    preview = alerts.preview_alert(runtime, "transfer-notice", {}, ("email",), targeting)
    with pytest.raises(InvalidInput, match="would reach nobody.*imported from: r.csv"):
        alerts.require_recipients(runtime, preview, targeting)

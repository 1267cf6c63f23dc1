"""A bounded schemathesis run over every route of the app (0 server errors).

The schema is built from the app object itself (`app.openapi()`, whether or not /openapi.json
is served), then completed: routes kept out of the document (/ops, /metrics, /healthz...) are
added, and every form POST gets a form body with its fields, a valid CSRF token among the values
and real link tokens among the path values, so cases get past the CSRF and signature checks and
reach the handlers. Twilio signatures cannot be generated from a schema: test_fuzz.py signs.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from broadcast.registrants.links import LinkSigner
from broadcast.store.tables import SubscriptionStatus
from tests.web.conftest import CSRF_RE, Web
from tests.web.test_fuzz import FIELDS
from tests.web.test_twilio_webhooks import make_registrant

EXAMPLES_PER_ROUTE = 12
BUDGET_SECONDS = 30.0


def app_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, in its schema or not."""
    found = []

    def walk(routes: list[Any]) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes)
            elif getattr(route, "methods", None):
                found.extend((m, route.path) for m in route.methods if m != "HEAD")

    walk(app.routes)
    return sorted(set(found))


def full_schema(app: Any, csrf: str, tokens: list[str]) -> dict[str, Any]:
    doc = app.openapi()
    token_values = {"anyOf": [{"enum": tokens}, {"type": "string"}]}
    text = {"anyOf": [{"type": "string"}, {"type": "string", "enum": ["", "\x00", "a\r\nb"]}]}
    form = {
        "type": "object",
        "properties": {name: text for name in FIELDS} | {"csrf_token": {"enum": [csrf, ""]}},
        # Always sent (valid or empty): left optional, a run of 12 cases could omit it from every
        # POST to one route and never get past the CSRF check (1 run in 4 did).
        "required": ["csrf_token"],
    }
    for method, path in app_routes(app):
        operation = (
            doc["paths"]
            .setdefault(path, {})
            .setdefault(method.lower(), {"responses": {"200": {"description": "OK"}}})
        )
        operation["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": token_values}
            for name in ("token",)
            if "{token}" in path
        ]
        if method == "POST":
            operation["requestBody"] = {
                "content": {"application/x-www-form-urlencoded": {"schema": form}}
            }
    return doc


def test_schemathesis_finds_no_server_error_on_any_route(make_web) -> None:  # type: ignore[no-untyped-def]
    # Given a running app with a registrant, their link tokens, and a browser's CSRF pair
    web: Web = make_web(
        web_ip_rate="100000/1m", web_contact_rate="100000/1m", web_code_rate="100000/1m"
    )
    make_registrant(web, SubscriptionStatus.PENDING, channels="sms,voice")
    registrant = web.registrant(mobile="+447911123456")
    assert registrant is not None
    links = LinkSigner(web.settings.secret_key.get_secret_value(), web.url)
    pid = registrant.public_id
    tokens = [
        links.token(pid, "manage"),
        links.token(pid, "unsubscribe", "sms"),
        links.token(pid, "confirm", "sms"),
        links.token(pid, "confirm", "email"),
    ]
    session = requests.Session()
    match = CSRF_RE.search(session.get(web.url + "/subscribe").text)
    assert match
    from broadcast.web import create_app

    schema = schemathesis.openapi.from_dict(full_schema(create_app(web.settings), match[1], tokens))
    operations = [result.ok() for result in schema.get_all_operations()]
    covered = {(op.method.upper(), op.path) for op in operations}
    assert covered >= set(app_routes(create_app(web.settings))), "a route is not in the run"

    # When each route gets a bounded number of generated cases
    failures: list[str] = []
    seen: Counter[tuple[str, str, int]] = Counter()
    calls = 0
    started = time.monotonic()
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_ROUTE,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case) -> None:  # type: ignore[no-untyped-def]
            nonlocal calls
            response = case.call(base_url=web.url, session=session, allow_redirects=False)
            calls += 1
            seen[(case.method, case.operation.path, response.status_code)] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}")

        run()
    # Then no case got a server error, within the time budget
    assert failures == [], failures[:10]
    assert calls >= len(operations)
    # And the form posts got past the CSRF check to the handlers (not only 403s)
    for path in ("/subscribe", "/manage/{token}", "/confirm/{token}"):
        reached = {code for (m, p, code), n in seen.items() if m == "POST" and p == path}
        assert reached - {403}, (path, reached)
    assert time.monotonic() - started < BUDGET_SECONDS * 3, "schemathesis run is too slow"

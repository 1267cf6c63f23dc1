"""The resources the Twilio test server creates and lists, shaped like Twilio's JSON."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlencode

PREFIX = "/2010-04-01/Accounts/"
RESOURCES = ("Messages", "Calls")


class ResourceStore:
    """Created messages and calls, kept so list requests (crash recovery) can find them."""

    def __init__(self, account_sid: str) -> None:
        self.account_sid = account_sid
        self._lock = threading.Lock()
        self._rows: dict[str, list[dict[str, object]]] = {name: [] for name in RESOURCES}

    def create(self, resource: str, params: dict[str, list[str]]) -> dict[str, object]:
        first = {name: values[0] for name, values in params.items()}
        prefix = "SM" if resource == "Messages" else "CA"
        sid = prefix + secrets.token_hex(16)
        now = time.time()
        stamp = format_datetime(datetime.fromtimestamp(now, UTC))
        common = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": first["To"],
            "from": first.get("From"),
            "status": "queued",
            "date_created": stamp,
            "date_updated": stamp,
            "api_version": "2010-04-01",
            "price": None,
            "price_unit": "USD",
            "uri": f"{PREFIX}{self.account_sid}/{resource}/{sid}.json",
            "subresource_uris": {},
        }
        if resource == "Messages":
            body = first.get("Body", "")
            resource_json = common | {
                "body": body,
                "num_segments": str(max(1, -(-len(body) // 153))),
                "num_media": "0",
                "direction": "outbound-api",
                "messaging_service_sid": first.get("MessagingServiceSid"),
                "date_sent": None,
                "error_code": None,
                "error_message": None,
            }
        else:
            resource_json = common | {
                "direction": "outbound-api",
                "parent_call_sid": None,
                "to_formatted": first["To"],
                "from_formatted": first.get("From"),
                "phone_number_sid": None,
                "start_time": None,
                "end_time": None,
                "duration": None,
                "answered_by": None,
                "forwarded_from": None,
                "group_sid": None,
                "caller_name": None,
                "queue_time": "0",
                "trunk_sid": None,
            }
        # What a later list shows: the message has gone out by then (sent, date_sent set).
        stored = resource_json | {
            "status": "sent" if prefix == "SM" else "completed",
            "date_sent" if prefix == "SM" else "start_time": stamp,
            "_at": now,
        }
        with self._lock:
            self._rows[resource].append(stored)
        return resource_json

    def page(self, resource: str, path: str, query: dict[str, list[str]]) -> dict[str, object]:
        """One page of a list, filtered by To and DateSent> (messages) or StartTime> (calls)."""
        first = {name: values[0] for name, values in query.items()}
        after_key = "DateSent>" if resource == "Messages" else "StartTime>"
        after = _parse_time(first[after_key]) if after_key in first else None
        with self._lock:
            rows = [
                r
                for r in self._rows[resource]
                if ("To" not in first or r["to"] == first["To"])
                and (after is None or float(r["_at"]) >= after)
            ]  # type: ignore[arg-type]
        size, page = int(first.get("PageSize", 50)), int(first.get("Page", 0))
        chunk = [
            {k: v for k, v in r.items() if k != "_at"}
            for r in rows[page * size : (page + 1) * size]
        ]
        more = (page + 1) * size < len(rows)
        next_query = urlencode({**first, "Page": page + 1, "PageSize": size}) if more else None
        return {
            resource.lower(): chunk,
            "page": page,
            "page_size": size,
            "start": page * size,
            "end": page * size + len(chunk),
            "uri": path,
            "first_page_uri": path,
            "previous_page_uri": None,
            "next_page_uri": f"{path}?{next_query}" if more else None,
        }


def _parse_time(value: str) -> float:
    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()

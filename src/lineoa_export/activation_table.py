"""The activation table: what happened to every event, as people read it.

One row per event (state, delivered, last status code and error, retry key, LINE's
request id, sent message ids) with its per-attempt history. Read in one query per page
plus one for the page's attempts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from .delivery import units
from .errors import NotFound
from .store.database import Database, Row

COLUMNS = (
    "event_id",
    "recipient",
    "state",
    "delivered",
    "status_code",
    "error",
    "attempts",
    "retry_key",
    "line_request_id",
    "sent_message_ids",
    "time",
)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Filters:
    state: str | None = None
    delivered: bool | None = None
    status_code: int | None = None
    since: float | None = None
    until: float | None = None


def _attempt(row: Row) -> dict[str, Any]:
    return {
        "attempt": row["number"],
        "time": iso(row["started_at"]),
        "status_code": row["status_code"],
        "error": row["error"],
        "line_request_id": row["line_request_id"],
        "duration_ms": row["duration_ms"],
    }


def _entry(row: Row, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    delivered = row["state"] == "delivered"
    return {
        "event_id": row["event_id"],
        "recipient": row["recipient"],
        "state": row["state"],
        "delivered": delivered,
        "status_code": row["status_code"],
        "error": None if delivered else row["error"],
        "attempts": row["attempts"],
        "retry_key": row["retry_key"],
        # After a 409 the request LINE accepted is the earlier one it names.
        "line_request_id": row["accepted_request_id"] or row["line_request_id"],
        "sent_message_ids": orjson.loads(row["sent_message_ids"]) if row["sent_message_ids"] else [],
        "time": iso(row["accepted_at"]),
        "next_attempt_at": iso(row["next_attempt_at"]) if row["state"] in ("retrying", "queued") else None,
        "finished_at": iso(row["finished_at"]),
        # A deferred event (quiet hours, frequency cap) goes back in line at this time.
        "due_at": iso(row["next_attempt_at"]) if row["state"] == "deferred" else None,
        "attempt_log": attempts,
    }


def page(
    db: Database, activation: str, *, filters: Filters = Filters(), limit: int = 100, before: int | None = None
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first. Returns the entries and the cursor for the next (older) page, or None at the end."""
    # One state (asked for, or implied by "delivered"): its own query, which an index serves.
    state = filters.state or ("delivered" if filters.delivered else None)
    rows = db.run(
        "log_page" if state is None else "log_page_in_state",
        {
            "activation": activation,
            "state": state,
            "delivered": None if filters.delivered is None else int(filters.delivered),
            "status_code": filters.status_code,
            "since": filters.since,
            "until": filters.until,
            "before_id": before,
            "limit": limit,
        },
    )
    if not rows:
        return [], None
    ids = [r["id"] for r in rows]
    by_event: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for a in db.run("log_attempts", {"activation": activation, "lo": min(ids), "hi": max(ids)}):
        if a["event"] in by_event:
            by_event[a["event"]].append(_attempt(a))
    entries = [_entry(r, by_event[r["id"]]) for r in rows]
    return entries, (ids[-1] if len(rows) == limit else None)


def iterate(
    db: Database, activation: str, *, filters: Filters = Filters(), page_size: int = 1000
) -> Iterator[dict[str, Any]]:
    before: int | None = None
    while True:
        entries, before = page(db, activation, filters=filters, limit=page_size, before=before)
        yield from entries
        if before is None:
            return


def event(db: Database, activation: str, event_id: str) -> dict[str, Any]:
    rows = db.run("log_event", {"activation": activation, "event_id": event_id})
    if not rows:
        raise NotFound(f"event {event_id!r} not found in activation {activation!r}")
    row = rows[0]
    attempts = [
        _attempt(a) for a in db.run("log_attempts", {"activation": activation, "lo": row["id"], "hi": row["id"]})
    ]
    entry = _entry(row, attempts)
    entry["request_body"] = orjson.loads(_sent(db, row)) if row["body"] else None
    return entry


def _sent(db: Database, row: Row) -> bytes:
    """The body as sent: without its aggregation unit when the month's 1,000 were used up (the
    stored body keeps it; the unit is taken out on sending). Unsent, the body as stored."""
    body = bytes(row["body"])
    if row["aggregation_unit"] is None or row["first_attempt_at"] is None:
        return body
    return units.sent_body(db, row["channel_key"], row["aggregation_unit"], body, row["first_attempt_at"])


# What a spreadsheet may read as the start of a formula: OWASP's list; leading white space and
# line breaks (some skip them before looking for "="); ";" (a separator in some locales); and the
# full-width and small forms that East Asian input methods type, which Excel reads as the ASCII ones.
FORMULA_STARTS = frozenset("=+-@\t\r\n ;") | frozenset("＝＋－＠﹦﹢﹣﹫−")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(value)
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value  # a spreadsheet would run it as a formula (CSV injection)
    return value


def to_csv(entries: list[dict[str, Any]] | Iterator[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for e in entries:
        writer.writerow([_cell(e[c]) for c in COLUMNS])
    return out.getvalue()


def csv_chunks(entries: Iterator[dict[str, Any]], rows_per_chunk: int = 500) -> Iterator[str]:
    """The activation table as CSV for a streamed download: one header, then rows in chunks."""
    chunk: list[dict[str, Any]] = []
    header = True
    for entry in entries:
        chunk.append(entry)
        if len(chunk) >= rows_per_chunk:
            text = to_csv(chunk)
            yield text if header else text.split("\r\n", 1)[1]
            header, chunk = False, []
    if chunk or header:
        text = to_csv(chunk)
        yield text if header else text.split("\r\n", 1)[1]

"""The activation table as people read it: ISO times, CSV that a spreadsheet opens safely."""

from __future__ import annotations

import csv
import io

import pytest

from lineoa_export.activation_table import COLUMNS, iso, to_csv


def entry(**fields: object) -> dict[str, object]:
    base = {c: None for c in COLUMNS}
    base.update(event_id="e1", state="failed", delivered=False, attempts=1, sent_message_ids=[])
    base.update(fields)
    return base


def test_times_are_iso_8601_utc_with_milliseconds() -> None:
    assert iso(1_800_000_000.1234) == "2027-01-15T08:00:00.123Z"
    assert iso(None) is None


def test_csv_has_a_header_and_one_row_per_event() -> None:
    rows = list(csv.reader(io.StringIO(to_csv([entry(), entry(event_id="e2", sent_message_ids=["1", "2"])]))))
    assert rows[0] == list(COLUMNS)
    assert [r[0] for r in rows[1:]] == ["e1", "e2"]
    assert rows[2][COLUMNS.index("sent_message_ids")] == "1 2"


@pytest.mark.parametrize(
    "dangerous",
    [
        '=HYPERLINK("x")',
        "+1",
        "-2+3",
        "@SUM(A1)",
        "\t=1",
        " =1+1",
        "\n=1",
        "\r=1",
        ";=1",
        '＝HYPERLINK("x")',
        "＋1",
        "－1",
        "＠SUM(A1)",
        "﹦1",
        "−1",
    ],
)
def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_quoted(dangerous: str) -> None:
    rows = list(csv.reader(io.StringIO(to_csv([entry(event_id=dangerous, error=dangerous)]))))
    assert rows[1][0] == "'" + dangerous
    assert rows[1][COLUMNS.index("error")] == "'" + dangerous

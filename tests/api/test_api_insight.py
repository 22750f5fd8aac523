"""The API's side of issue 10: aggregation units on activations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from api_support import START, Api, make_api

from lineoa_export.clock import FakeClock
from lineoa_export.simulator import ChannelConfig, SimulatorOptions
from lineoa_export.testing import ThreadedSimulator, user_id


def test_an_activation_gets_a_unit_from_its_name_and_says_how_it_stands(api: Api) -> None:
    created = api.create_activation("spring_sale")
    assert created["aggregation_unit"] == "spring_sale"
    assert created["aggregation_unit_status"]["state"] == "unused"
    api.trigger([{"line_user_id": user_id(1), "name": "Ann"}], "spring_sale")
    api.deliver()
    shown = api.get("/v1/activations/spring_sale").json()
    assert shown["aggregation_unit_status"]["state"] == "in_use"
    assert shown["aggregation_unit_status"]["month"] == "2027-01"
    assert api.sim is not None and api.sim.sim is not None
    [accepted] = api.sim.sim.record.accepted
    assert orjson.loads(accepted.body)["customAggregationUnits"] == ["spring_sale"]


def test_a_null_unit_or_no_aggregation_unit_means_none(api: Api) -> None:
    assert api.create_activation("a", aggregation_unit=None)["aggregation_unit"] is None
    assert api.create_activation("b", no_aggregation_unit=True)["aggregation_unit"] is None
    assert api.get("/v1/activations/b").json()["aggregation_unit_status"]["state"] == "none"
    changed = api.patch("/v1/activations/b", json={"aggregation_unit": "Promo_A"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["aggregation_unit"] == "Promo_A"
    cleared = api.patch("/v1/activations/b", json={"no_aggregation_unit": True})
    assert cleared.json()["aggregation_unit"] is None
    kept = api.patch("/v1/activations/a", json={"description": "x"})
    assert kept.json()["aggregation_unit"] is None


def test_a_copy_gets_a_unit_of_its_own(api: Api) -> None:
    api.create_activation("original", aggregation_unit="Shared")
    copy = api.post("/v1/activations", json={"name": "copy", "copy_from": "original"})
    assert copy.status_code == 201, copy.text
    assert copy.json()["aggregation_unit"] == "copy"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"aggregation_unit": "no spaces"}, "aggregation_unit"),
        ({"aggregation_unit": "x" * 31}, "aggregation_unit"),
        ({"aggregation_unit": "Promo", "no_aggregation_unit": True}, "no_aggregation_unit"),
    ],
)
def test_a_bad_unit_answers_422_naming_the_field(api: Api, fields: dict[str, Any], field: str) -> None:
    body = {
        "name": "bad",
        "authentication": "line",
        "recipient": "{{line_user_id}}",
        "messages": [{"type": "text", "text": "hi"}],
        **fields,
    }
    response = api.post("/v1/activations", json=body)
    assert response.status_code == 422, response.text
    assert field in [p["field"] for p in response.json()["problems"]]


def test_the_event_view_shows_the_body_as_sent_when_the_months_units_are_used_up(tmp_path: Path) -> None:
    clock = FakeClock(START)
    simulator = ThreadedSimulator(SimulatorOptions(channels=[ChannelConfig(prior_aggregation_units=1000)]), clock=clock)
    try:
        with make_api(tmp_path, simulator, clock=clock) as api:
            api.create_activation("late")
            api.trigger([{"event_id": "e1", "line_user_id": user_id(1), "name": "Ann"}], "late")
            api.deliver()
            shown = api.get("/v1/activations/late/events/e1")
            assert shown.status_code == 200, shown.text
            assert simulator.sim is not None
            [sent] = simulator.sim.record.accepted
            assert shown.json()["request_body"] == orjson.loads(sent.body)
            assert "customAggregationUnits" not in shown.json()["request_body"]
            status = api.get("/v1/activations/late").json()["aggregation_unit_status"]
            assert status["state"] == "withheld"
    finally:
        simulator.stop()


# -- stats -------------------------------------------------------------------------------------


def test_stats_come_from_line_then_from_the_store(api: Api) -> None:
    api.create_activation()
    api.trigger([{"line_user_id": user_id(n), "name": "Ann"} for n in range(3)])
    api.deliver()
    first = api.get("/v1/activations/welcome/stats", params={"from": "2027-01-15", "to": "2027-01-15"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["source"], body["aggregation_unit"], body["from"], body["to"]) == (
        "line",
        "welcome",
        "2027-01-15",
        "2027-01-15",
    )
    assert body["figures"]["overview"]["uniqueImpression"] is None  # 3 recipients: fewer than 20
    assert body["null_means"] == "fewer than 20"
    api.clock.advance(60.0)
    again = api.get("/v1/activations/welcome/stats", params={"from": "2027-01-15", "to": "2027-01-15"}).json()
    assert (again["source"], again["age_seconds"]) == ("stored", 60.0)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"from": "15/01/2027"}, "from"), ({"from": "2027-01-01", "to": "2027-03-01"}, "to"), ({"to": "x"}, "to")],
)
def test_bad_stats_days_answer_422_naming_the_field(api: Api, params: dict[str, str], field: str) -> None:
    api.create_activation()
    response = api.get("/v1/activations/welcome/stats", params=params)
    assert response.status_code == 422, response.text
    assert [p["field"] for p in response.json()["problems"]] == [field]


def test_stats_of_an_unknown_activation_is_404(api: Api) -> None:
    assert api.get("/v1/activations/nope/stats").status_code == 404


# -- reconcile ---------------------------------------------------------------------------------


@pytest.fixture
def api_on_one_clock(tmp_path: Path) -> Iterator[Api]:
    """The API and a simulator that share the fake clock (LINE's days are the test's days)."""
    clock = FakeClock(START)
    simulator = ThreadedSimulator(clock=clock)
    try:
        with make_api(tmp_path, simulator, clock=clock) as a:
            yield a
    finally:
        simulator.stop()


def test_reconcile_compares_lines_count_with_ours_and_keeps_the_verdict(api_on_one_clock: Api) -> None:
    api = api_on_one_clock
    api.create_activation()
    api.trigger([{"line_user_id": user_id(n), "name": "Ann"} for n in range(20)])
    api.deliver()
    today = api.post("/v1/authentications/line/reconcile", json={"date": "2027-01-15"})
    assert today.status_code == 200, today.text
    assert (today.json()["verdict"], today.json()["our_count"]) == ("not_ready", 20)
    api.clock.advance(86_400.0)
    done = api.post("/v1/authentications/line/reconcile").json()  # yesterday in Japan
    assert (done["date"], done["verdict"], done["line_count"], done["difference"]) == ("2027-01-15", "equal", 20, 0)
    stored = api.get("/v1/authentications/line/reconciliations").json()
    assert [(r["date"], r["verdict"]) for r in stored] == [("2027-01-15", "equal")]
    metrics = api.get("/metrics").text
    assert 'lineoa_export_reconciliation{authentication="line",day="2027-01-15",verdict="equal"} 1.0' in metrics
    assert 'lineoa_export_reconciliation_difference{authentication="line",day="2027-01-15"} 0.0' in metrics


def test_reconcile_refuses_a_bad_date_naming_it_and_an_unknown_authentication(api: Api) -> None:
    bad = api.post("/v1/authentications/line/reconcile", json={"date": "15.01.2027"})
    assert bad.status_code == 422 and [p["field"] for p in bad.json()["problems"]] == ["date"]
    assert api.post("/v1/authentications/nope/reconcile").status_code == 404
    assert api.get("/v1/authentications/nope/reconciliations").status_code == 404

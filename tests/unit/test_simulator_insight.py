"""The simulator's insight, aggregation-unit and push-count endpoints answer as LINE does,
from what it accepted: UTC+9 days and months, nulls under 20, ``unready`` for today."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp

from lineoa_export.line_time import JST
from lineoa_export.simulator import ChannelConfig, RunningSimulator, SimulatorOptions, running_simulator
from lineoa_export.testing import user_id

TOKEN = "demo-access-token"
INFO = "/v2/bot/message/aggregation/info"
LIST = "/v2/bot/message/aggregation/list"
STATS = "/v2/bot/insight/message/event/aggregation"
COUNT = "/v2/bot/message/delivery/push"
MSG_RATE = "The API rate limit has been exceeded. Try again later."


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def jst(text: str) -> float:
    """POSIX seconds of a ``YYYY-MM-DD HH:MM:SS`` in Japan time."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=JST).timestamp()


Scenario = Callable[[RunningSimulator, aiohttp.ClientSession], Awaitable[None]]


def run(scenario: Scenario, clock: Clock, options: SimulatorOptions | None = None, **kw: Any) -> None:
    async def main() -> None:
        async with running_simulator(options, clock=clock, **kw) as sim, aiohttp.ClientSession() as session:
            await scenario(sim, session)

    asyncio.run(main())


async def get(s: aiohttp.ClientSession, sim: RunningSimulator, path: str, **query: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with s.get(sim.url + path, params=query, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def push(
    s: aiohttp.ClientSession,
    sim: RunningSimulator,
    n: int,
    unit: str | None = None,
    messages: list[dict[str, Any]] | None = None,
) -> None:
    body: dict[str, Any] = {"to": user_id(n), "messages": messages or [{"type": "text", "text": "hi"}]}
    if unit is not None:
        body["customAggregationUnits"] = [unit]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with s.post(sim.url + "/v2/bot/message/push", json=body, headers=headers) as r:
        assert r.status == 200, await r.text()


# -- pushes per day ------------------------------------------------------------------------------


def test_push_count_splits_days_at_midnight_japan_time_and_is_unready_for_today() -> None:
    clock = Clock(jst("2027-01-10 23:59:59"))

    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        for n in range(20):
            await push(s, sim, n)
        clock.now = jst("2027-01-11 00:00:00")
        for n in range(25):
            await push(s, sim, n)
        assert await get(s, sim, COUNT, date="20270110") == (200, {"status": "ready", "success": 20})
        assert await get(s, sim, COUNT, date="20270111") == (200, {"status": "unready"})  # today in Japan
        assert await get(s, sim, COUNT, date="20270301") == (200, {"status": "unready"})
        clock.now = jst("2027-01-12 00:00:00")
        assert await get(s, sim, COUNT, date="20270111") == (200, {"status": "ready", "success": 25})

    run(scenario, clock)


def test_push_count_under_20_is_unavailable_for_privacy_and_old_days_out_of_service() -> None:
    clock = Clock(jst("2027-01-10 12:00:00"))

    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        for n in range(19):
            await push(s, sim, n)
        clock.now += 86_400
        assert await get(s, sim, COUNT, date="20270110") == (200, {"status": "unavailable_for_privacy"})
        assert await get(s, sim, COUNT, date="20180330") == (200, {"status": "out_of_service"})
        status, answer = await get(s, sim, COUNT, date="2027-01-10")
        assert status == 400
        assert answer["details"][0]["property"] == "date"

    run(scenario, clock)


# -- units used this month -----------------------------------------------------------------------


def test_units_used_this_month_are_counted_listed_and_paged() -> None:
    clock = Clock(jst("2027-01-31 23:00:00"))

    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        for n, unit in enumerate(["promo_a", "promo_b", "promo_a", "Promo_A"]):
            await push(s, sim, n, unit)
        assert await get(s, sim, INFO) == (200, {"numOfCustomAggregationUnits": 3})  # case-sensitive
        first = await get(s, sim, LIST, limit="2")
        assert first == (200, {"customAggregationUnits": ["promo_a", "promo_b"], "next": "2"})
        assert await get(s, sim, LIST, limit="2", start="2") == (200, {"customAggregationUnits": ["Promo_A"]})
        status, answer = await get(s, sim, LIST, limit="0")
        assert status == 400 and answer["details"][0]["property"] == "limit"
        clock.now = jst("2027-02-01 00:00:00")  # a new month in Japan: nothing used yet
        assert await get(s, sim, INFO) == (200, {"numOfCustomAggregationUnits": 0})

    run(scenario, clock)


def test_a_unit_past_the_months_1000_is_dropped_silently_and_the_push_still_goes() -> None:
    clock = Clock(jst("2027-01-15 10:00:00"))
    options = SimulatorOptions(channels=[ChannelConfig(prior_aggregation_units=999)])

    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        await push(s, sim, 1, "unit_1000")
        await push(s, sim, 2, "unit_1001")
        await push(s, sim, 3, "unit_1000")  # already used this month: still counted
        assert [p.aggregation_unit for p in sim.record.accepted] == ["unit_1000", None, "unit_1000"]
        assert sim.record.units_dropped == 1
        assert await get(s, sim, INFO) == (200, {"numOfCustomAggregationUnits": 1000})

    run(scenario, clock, options)


# -- statistics per unit -------------------------------------------------------------------------

RICH = [
    {"type": "text", "text": "hello"},
    {
        "type": "template",
        "altText": "offer",
        "template": {
            "type": "buttons",
            "text": "offer",
            "actions": [{"type": "uri", "label": "shop", "uri": "https://example.com/shop"}],
        },
    },
    {
        "type": "video",
        "originalContentUrl": "https://example.com/v.mp4",
        "previewImageUrl": "https://example.com/v.jpg",
    },
]


def test_statistics_count_every_recipient_who_looked_and_clicked() -> None:
    clock = Clock(jst("2027-01-15 10:00:00"))
    options = SimulatorOptions()
    options.engagement.open_rate = 1.0
    options.engagement.click_rate = 1.0
    options.engagement.media_play_rate = 1.0

    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        for n in range(30):
            await push(s, sim, n, "spring", RICH)
        await push(s, sim, 99, "other", RICH)
        day = {"from": "20270115", "to": "20270115"}
        status, answer = await get(s, sim, STATS, customAggregationUnit="spring", **day)
        assert status == 200
        assert answer["overview"]["uniqueImpression"] == 30
        assert answer["overview"]["uniqueClick"] == 30
        assert answer["overview"]["uniqueMediaPlayed"] == 30
        assert [m["seq"] for m in answer["messages"]] == [1, 2, 3]
        assert answer["messages"][0]["impression"] == 30
        assert answer["messages"][0]["mediaPlayed"] is None  # a text has no media
        assert answer["messages"][2]["mediaPlayed"] == 30
        assert answer["clicks"] == [
            {"seq": 2, "url": "https://example.com/shop", "click": 30, "uniqueClick": 30, "uniqueClickOfRequest": 30}
        ]

    run(scenario, clock, options)


def test_statistics_under_20_are_null_not_zero_and_stay_the_same_when_asked_again() -> None:
    clock = Clock(jst("2027-01-15 10:00:00"))

    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        for n in range(100):
            await push(s, sim, n, "spring", RICH)
        for n in range(5):
            await push(s, sim, n, "tiny", RICH)
        period = {"from": "20270101", "to": "20270131"}
        status, tiny = await get(s, sim, STATS, customAggregationUnit="tiny", **period)
        assert status == 200
        assert set(tiny["overview"].values()) == {None}
        assert tiny["messages"][0]["impression"] is None
        _, spring = await get(s, sim, STATS, customAggregationUnit="spring", **period)
        opened = spring["overview"]["uniqueImpression"]
        assert 20 <= opened < 100  # the default engagement: some looked, not all
        assert (await get(s, sim, STATS, customAggregationUnit="spring", **period))[1] == spring
        _, before = await get(s, sim, STATS, customAggregationUnit="spring", **{"from": "20261201", "to": "20261231"})
        assert before["overview"]["uniqueImpression"] is None
        assert before["messages"] == [] and before["clicks"] == []

    run(scenario, clock)


def test_statistics_refuse_bad_parameters_naming_them() -> None:
    clock = Clock(jst("2027-01-15 10:00:00"))

    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        cases = [
            ({"customAggregationUnit": "has space", "from": "20270101", "to": "20270102"}, "customAggregationUnit"),
            ({"customAggregationUnit": "u", "from": "2027011", "to": "20270102"}, "from"),
            ({"customAggregationUnit": "u", "from": "20270110", "to": "20270109"}, "to"),
            ({"customAggregationUnit": "u", "from": "20270101", "to": "20270201"}, "to"),  # 31 days after
        ]
        for query, parameter in cases:
            status, answer = await get(s, sim, STATS, **query)
            assert status == 400, query
            assert answer["details"][0]["property"] == parameter
        assert (await get(s, sim, STATS, customAggregationUnit="u", **{"from": "20270101", "to": "20270131"}))[0] == 200

    run(scenario, clock)


def test_statistics_allow_60_requests_an_hour_per_channel() -> None:
    clock = Clock(jst("2027-01-15 10:00:00"))

    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        query = {"customAggregationUnit": "u", "from": "20270101", "to": "20270115"}
        statuses = [(await get(s, sim, STATS, **query))[0] for _ in range(61)]
        assert statuses == [200] * 60 + [429]
        assert (await get(s, sim, STATS, **query))[1] == {"message": MSG_RATE}
        assert (await get(s, sim, INFO))[0] == 200  # other endpoints have their own budget
        clock.now += 60.0  # a minute later: one more request's worth
        assert (await get(s, sim, STATS, **query))[0] == 200

    run(scenario, clock)

"""The simulator's pieces without HTTP: bucket, record, options, and the CLI runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from pydantic import ValidationError

from lineoa_export.simulator import AcceptedPush, ChannelConfig, Record, SimulatorOptions
from lineoa_export.simulator.bucket import TokenBucket
from lineoa_export.simulator.options import merge_patch
from lineoa_export.simulator.record import max_in_window


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- bucket ----------------------------------------------------------------------------------------


def test_bucket_starts_full_and_refills_smoothly() -> None:
    clock = Clock()
    bucket = TokenBucket(10, clock=clock)
    assert bucket.burst == 10
    assert [bucket.try_take() for _ in range(11)] == [True] * 10 + [False]
    clock.now += 0.1
    assert bucket.try_take()
    assert not bucket.try_take()
    clock.now += 100
    assert bucket.tokens == 10  # capped at burst


def test_bucket_burst_and_reconfigure() -> None:
    clock = Clock()
    bucket = TokenBucket(100, 2, clock=clock)
    assert [bucket.try_take() for _ in range(3)] == [True, True, False]
    clock.now += 1
    bucket.reconfigure(5, 1)
    assert bucket.tokens == 1
    assert bucket.try_take()
    assert not bucket.try_take()
    bucket.refill()
    assert bucket.try_take()
    with pytest.raises(ValueError):
        TokenBucket(0)


# -- record ----------------------------------------------------------------------------------------


def _push(t: float, to: str = "U" + "a" * 32, key: str | None = None, rid: str = "r") -> AcceptedPush:
    return AcceptedPush(
        request_id=rid,
        channel_id="1",
        to=to,
        retry_key=key,
        sent_message_ids=("1",),
        quote_tokens=(None,),
        body=b"{}",
        monotonic=t,
        wall=t,
    )


@pytest.mark.parametrize(
    ("times", "seconds", "expected"),
    [
        ([], 1.0, 0),
        ([5.0], 1.0, 1),
        ([0.0, 0.5, 0.99, 1.0, 1.5], 1.0, 3),
        ([0.0, 1.0, 2.0, 3.0], 1.0, 1),  # half-open windows
        ([3.0, 0.1, 0.2, 2.9, 0.3], 1.0, 3),  # unsorted input
        ([0.0] * 7, 0.001, 7),
    ],
)
def test_max_in_window(times: list[float], seconds: float, expected: int) -> None:
    assert max_in_window(times, seconds) == expected


def test_record_counts_and_keys() -> None:
    record = Record()
    for t in (0.0, 0.2, 0.4, 1.1, 1.2, 1.3, 1.35):
        record.add_push(_push(t))
    assert record.max_accepted_in_any_window() == 5
    assert record.max_accepted_in_any_window(0.25) == 3
    record.add_push(_push(3.0, key="k", rid="first"))
    found = record.accepted_for_key("1", "k")
    assert found is not None and found.request_id == "first"
    assert record.accepted_for_key("2", "k") is None  # keys are per channel
    assert not record.note_key_body("1", "k", b"a")
    assert not record.note_key_body("1", "k", b"a")
    assert record.note_key_body("1", "k", b"b")
    assert record.note_key_body("1", "k", b"b")
    assert record.key_body_mismatches == 2
    assert record.bodies_for_key("k") == [b"a", b"b"]
    record.count_status("push", 200)
    record.count_status("multicast", 200)
    record.count_status("push", 429)
    stats = record.stats()
    assert stats["requests_by_status"] == {"200": 2, "429": 1}
    assert stats["accepted_total"] == 8
    assert stats["max_accepted_per_recipient"] == 8
    record.reset()
    assert record.stats()["accepted_total"] == 0
    assert record.accepted_for_key("1", "k") is None


# -- options ---------------------------------------------------------------------------------------


def test_option_defaults() -> None:
    options = SimulatorOptions()
    [channel] = options.channels
    assert channel.channel_id == "1234567890"
    assert channel.channel_secret == "demo-channel-secret-0123456789ab"
    assert channel.access_tokens == ["demo-access-token"]
    assert channel.rate_limit_per_second == 2000
    assert channel.effective_burst == 2000
    assert channel.quota is None
    assert options.token_ttl_seconds == 900
    assert len(channel.bot_user_id) == 33 and channel.bot_user_id.startswith("U")


@pytest.mark.parametrize(
    "bad",
    [
        {"fault_500": 1.5},
        {"script": {"U": [200]}},
        {"script": {"U": ["nope"]}},
        {"channels": []},
        {"channels": [{"channel_id": "abc"}]},
        {"channels": [{"channel_id": "1"}, {"channel_id": "1"}]},
        {"channels": [{"bot_user_id": "U123"}]},
        {"unknown": True},
    ],
)
def test_invalid_options(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SimulatorOptions.model_validate(bad)


def test_assignment_is_validated() -> None:
    options = SimulatorOptions()
    with pytest.raises(ValidationError):
        options.fault_503 = 2.0
    with pytest.raises(ValidationError):
        options.channels[0].quota = -1


def test_merge_patch() -> None:
    options = SimulatorOptions(script={"Ua": [500], "Ub": [503]})
    new = merge_patch(options, {"script": {"Ua": None, "Uc": ["drop"]}, "seed": 3})
    assert new.script == {"Ub": [503], "Uc": ["drop"]}
    assert new.seed == 3
    assert options.seed is None  # the original is untouched

    new = merge_patch(options, {"channels": {"1234567890": {"quota": 7}, "42": {"access_tokens": ["x"]}}})
    assert [(c.channel_id, c.quota) for c in new.channels] == [("1234567890", 7), ("42", None)]
    new = merge_patch(new, {"channels": {"42": None}})
    assert [c.channel_id for c in new.channels] == ["1234567890"]
    new = merge_patch(options, {"channels": [ChannelConfig(channel_id="9").model_dump()]})
    assert [c.channel_id for c in new.channels] == ["9"]


# -- the CLI runner --------------------------------------------------------------------------------


def test_serve_forever_prints_url_and_stops_on_sigterm() -> None:
    code = "from lineoa_export.simulator import serve_forever\nserve_forever(None, '127.0.0.1', 0)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("http://127.0.0.1:")
        assert int(line.rsplit(":", 1)[1]) > 0
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert out == ""
    assert err == ""


def test_serve_forever_exits_cleanly_on_ctrl_c() -> None:
    code = "from lineoa_export.simulator import serve_forever\nserve_forever(None, '127.0.0.1', 0)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("http://")
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "Traceback" not in err

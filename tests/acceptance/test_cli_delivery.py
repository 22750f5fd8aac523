"""Acceptance: ``trigger`` → ``worker --until-idle`` → ``log``, against a real simulator process.

One scenario runs once for the module (CLI calls are slow to start, so they are shared); each
test then checks one promise of the interface on what the scenario recorded.

Recipients and what the simulator's script makes LINE answer them:

=========  ==============================  =============================================
event      recipient script                expected
=========  ==============================  =============================================
ok         (none)                          delivered at once; a repeat is a duplicate
retried    503, 503                        3 attempts, delivered, one retry key
exhausted  503, 503, 503, 503              4 attempts (3 retries), failed for good
refused    400                             failed at once, 1 attempt
missing    (event lacks ``name``)          failed at trigger time, nothing sent
badrcpt    (uid is not a LINE id)          failed at trigger time, names the recipient
lost       accept-then-drop                accepted but the answer is lost: the retry
                                           gets 409, which counts as delivered
ratelim    429 (rate limit)                retried, delivered
mixed      500, 502, 504                   retried 3 times, delivered on the 4th attempt
hung       hang (no answer)                the request times out (worker timeout 2 s),
                                           the retry delivers
dropped    drop, drop                      connection closed twice, then delivered
stdin1     (name full of quotes, braces…)  the text arrives verbatim, nothing injected
=========  ==============================  =============================================
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from cli_support import Cli, Setup, Simulator, describe, new_user

ACTIVATION = "welcome"
#: A value that would break naive templating: quotes, backslashes, a newline, braces, a placeholder.
NASTY = 'Ann "the \\ quoted" \n{{points}} }} {"to": "U0"}'
LOG_KEYS = {
    "event_id", "recipient", "state", "delivered", "status_code", "error", "attempts", "retry_key",
    "line_request_id", "sent_message_ids", "time", "attempt_log",
}  # fmt: skip


@dataclass
class Scenario:
    cli: Cli
    sim: Simulator
    users: dict[str, str]
    runs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    stats_after_first_worker: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    def entry(self, event_id: str) -> dict[str, Any]:
        matches = [e for e in self.log if e["event_id"] == event_id]
        assert len(matches) == 1, (event_id, self.log)
        return matches[0]


def ev(uid: str, event_id: str | None = None, **fields: Any) -> str:
    return Setup.event(uid, event_id, **fields)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    directory = tmp_path_factory.mktemp("delivery")
    sim = Simulator()
    try:
        cli = Cli(directory)
        setup = Setup(cli, sim)
        setup.activation(ACTIVATION)
        users = {
            name: new_user()
            for name in (
                "ok",
                "retried",
                "exhausted",
                "refused",
                "file1",
                "lost",
                "ratelim",
                "mixed",
                "hung",
                "dropped",
                "stdin1",
                "stdin2",
            )
        }
        sim.patch(
            {
                "script": {
                    users["retried"]: [503, 503],
                    users["exhausted"]: [503, 503, 503, 503],
                    users["refused"]: [400],
                    users["lost"]: ["accept-then-drop"],
                    users["ratelim"]: [429],
                    users["mixed"]: [500, 502, 504],
                    users["hung"]: ["hang"],
                    users["dropped"]: ["drop", "drop"],
                }
            }
        )
        s = Scenario(cli, sim, users)
        s.runs["ok"] = cli("trigger", ACTIVATION, "--event", ev(users["ok"], "ok"))
        s.runs["ok-again"] = cli("trigger", ACTIVATION, "--event", ev(users["ok"], "ok"))
        s.runs["missing"] = cli(
            "trigger", ACTIVATION, "--event", json.dumps({"event_id": "missing", "uid": new_user()})
        )

        ndjson = directory / "events.ndjson"
        ndjson.write_text(
            "\n".join(
                [
                    ev(users["retried"], "retried"),  # line 1
                    "{not json",  # line 2: not JSON
                    ev(users["exhausted"], "exhausted"),  # line 3
                    json.dumps([{"uid": users["file1"]}]),  # line 4: a JSON array, not an object
                    ev(users["refused"], "refused"),  # line 5
                    "",  # line 6: blank, skipped
                    ev("not-a-line-user", "badrcpt"),  # line 7: rendered recipient is invalid
                    ev(users["file1"]),  # line 8: no event_id: one is generated
                    ev(users["lost"], "lost"),  # line 9
                    ev(users["ratelim"], "ratelim"),  # line 10
                    ev(users["mixed"], "mixed"),  # line 11
                    ev(users["hung"], "hung"),  # line 12
                    ev(users["dropped"], "dropped"),  # line 13
                ]
            )
            + "\n"
        )
        s.runs["file"] = cli("trigger", ACTIVATION, "--events", str(ndjson))
        stdin = ev(users["stdin1"], "stdin1", name=NASTY) + "\n" + ev(users["stdin2"], "stdin2", points=True) + "\n"
        s.runs["stdin"] = cli("trigger", ACTIVATION, "--events", "-", input=stdin)
        s.runs["unknown-event"] = cli("trigger", "no-such-activation", "--event", ev(users["ok"], "x"))
        s.runs["unknown-events"] = cli("trigger", "no-such-activation", "--events", str(ndjson))

        # A short request timeout, so the scripted hang costs two seconds.
        s.runs["worker"] = cli("worker", "--until-idle", timeout=30, env={"LINEOA_EXPORT_TIMEOUT": "2"})
        s.stats_after_first_worker = sim.stats()
        # The same event id once more, after delivery: still a duplicate, and never sent again.
        s.runs["ok-after-delivery"] = cli("trigger", ACTIVATION, "--event", ev(users["ok"], "ok"))
        s.runs["worker-again"] = cli("worker", "--until-idle", timeout=30)
        s.stats = sim.stats()
        s.accepted = sim.accepted(bodies=True)
        s.log = cli.log_json(ACTIVATION)
        yield s
    finally:
        sim.stop()


def lines(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines() if line.strip()]


# -- trigger ---------------------------------------------------------------------------------------


def test_trigger_event_prints_its_id_and_accepted(scenario: Scenario) -> None:
    run = scenario.runs["ok"]
    assert run.returncode == 0, describe(run)
    assert lines(run.stdout) == [["ok", "accepted"]]


def test_trigger_same_event_id_is_a_duplicate_and_sent_once(scenario: Scenario) -> None:
    for name in ("ok-again", "ok-after-delivery"):
        run = scenario.runs[name]
        assert run.returncode == 0, describe(run)
        assert lines(run.stdout) == [["ok", "duplicate"]], name
    ok_user = scenario.users["ok"]
    assert scenario.stats["accepted_per_recipient"][ok_user] == 1
    assert [p["to"] for p in scenario.accepted].count(ok_user) == 1
    assert [e["event_id"] for e in scenario.log].count("ok") == 1
    run = scenario.runs["worker-again"]
    assert run.returncode == 0, describe(run)
    assert (
        scenario.stats["requests_by_endpoint"]["push"]
        == scenario.stats_after_first_worker["requests_by_endpoint"]["push"]
    ), "the second worker run sent something"


def test_trigger_missing_variable_fails_the_event_with_exit_0(scenario: Scenario) -> None:
    run = scenario.runs["missing"]
    assert run.returncode == 0, describe(run)
    assert lines(run.stdout) == [["missing", "failed", "Variable not found: name"]]
    entry = scenario.entry("missing")
    assert entry["state"] == "failed"
    assert entry["delivered"] is False
    assert entry["error"] == "Variable not found: name"
    assert entry["attempts"] == 0
    assert entry["status_code"] is None
    assert entry["attempt_log"] == []


def test_trigger_invalid_recipient_fails_the_event_naming_it(scenario: Scenario) -> None:
    entry = scenario.entry("badrcpt")
    assert entry["state"] == "failed"
    assert entry["attempts"] == 0
    assert "not-a-line-user" in entry["error"]
    assert "not-a-line-user" not in [p["to"] for p in scenario.accepted]


def test_trigger_events_file_reports_bad_lines_and_records_good_ones(scenario: Scenario) -> None:
    run = scenario.runs["file"]
    assert run.returncode != 0, describe(run)
    assert "line 2" in run.stderr and "line 4" in run.stderr
    for good in (
        "line 1",
        "line 3",
        "line 5",
        "line 6",
        "line 7",
        "line 8",
        "line 9",
        "line 10",
        "line 11",
        "line 12",
        "line 13",
    ):
        assert good not in run.stderr, good
    printed = lines(run.stdout)
    assert [p[:2] for p in printed[:4]] == [
        ["retried", "accepted"],
        ["exhausted", "accepted"],
        ["refused", "accepted"],
        ["badrcpt", "failed"],
    ]
    assert len(printed) == 10
    assert [p[:2] for p in printed[5:]] == [
        ["lost", "accepted"],
        ["ratelim", "accepted"],
        ["mixed", "accepted"],
        ["hung", "accepted"],
        ["dropped", "accepted"],
    ]
    generated_id, status = printed[4][:2]
    assert status == "accepted"
    assert generated_id and generated_id not in ("retried", "exhausted", "refused", "badrcpt")
    # All five good lines are in the activation table.
    recorded = {e["event_id"] for e in scenario.log}
    assert {"retried", "exhausted", "refused", "badrcpt", generated_id} <= recorded
    assert scenario.entry(generated_id)["recipient"] == scenario.users["file1"]


def test_trigger_events_from_stdin(scenario: Scenario) -> None:
    run = scenario.runs["stdin"]
    assert run.returncode == 0, describe(run)
    assert lines(run.stdout) == [["stdin1", "accepted"], ["stdin2", "accepted"]]
    assert scenario.entry("stdin1")["delivered"] is True
    assert scenario.entry("stdin2")["delivered"] is True


@pytest.mark.parametrize("run", ["unknown-event", "unknown-events"])
def test_trigger_unknown_activation_exits_non_zero(scenario: Scenario, run: str) -> None:
    result = scenario.runs[run]
    assert result.returncode != 0, describe(result)
    assert "no-such-activation" in result.stderr
    assert result.stdout.strip() == ""


# -- worker ------------------------------------------------------------------------------------------


def test_worker_until_idle_delivers(scenario: Scenario) -> None:
    run = scenario.runs["worker"]
    assert run.returncode == 0, describe(run)
    entry = scenario.entry("ok")
    assert entry["state"] == "delivered"
    assert entry["delivered"] is True
    assert entry["status_code"] == 200
    assert entry["error"] is None
    assert entry["attempts"] == 1
    assert entry["recipient"] == scenario.users["ok"]
    push = next(p for p in scenario.accepted if p["to"] == scenario.users["ok"])
    assert entry["line_request_id"] == push["request_id"]
    assert entry["retry_key"] == push["retry_key"]
    assert entry["sent_message_ids"] == [m["id"] for m in push["sent_messages"]]
    # Every delivered event was accepted by LINE exactly once; no key was ever sent with two bodies.
    delivered = [e for e in scenario.log if e["delivered"]]
    assert {e["recipient"] for e in delivered} == {p["to"] for p in scenario.accepted}
    assert scenario.stats["max_accepted_per_recipient"] == 1
    assert scenario.stats["key_body_mismatches"] == 0


def test_worker_retries_503_with_the_same_key_then_delivers(scenario: Scenario) -> None:
    entry = scenario.entry("retried")
    assert entry["state"] == "delivered"
    assert entry["delivered"] is True
    assert entry["attempts"] == 3
    assert entry["status_code"] == 200
    assert entry["error"] is None
    assert [a["status_code"] for a in entry["attempt_log"]] == [503, 503, 200]
    pushes = [p for p in scenario.accepted if p["to"] == scenario.users["retried"]]
    assert len(pushes) == 1
    assert pushes[0]["retry_key"] == entry["retry_key"]
    assert entry["line_request_id"] == pushes[0]["request_id"]
    # Retries wait initial_delay × multiple^(n-1): 0.05 s, then 0.1 s.
    times = [datetime.fromisoformat(a["time"]) for a in entry["attempt_log"]]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095, gaps


def test_worker_stops_after_max_retries(scenario: Scenario) -> None:
    entry = scenario.entry("exhausted")
    assert entry["state"] == "failed"
    assert entry["delivered"] is False
    assert entry["status_code"] == 503
    assert entry["attempts"] == 4
    assert [a["status_code"] for a in entry["attempt_log"]] == [503, 503, 503, 503]
    assert "retr" in entry["error"].lower(), entry["error"]
    assert scenario.users["exhausted"] not in scenario.stats["accepted_per_recipient"]


def test_worker_400_fails_at_once(scenario: Scenario) -> None:
    entry = scenario.entry("refused")
    assert entry["state"] == "failed"
    assert entry["delivered"] is False
    assert entry["status_code"] == 400
    assert entry["attempts"] == 1
    assert len(entry["attempt_log"]) == 1
    assert entry["error"]
    assert scenario.users["refused"] not in scenario.stats["accepted_per_recipient"]


def test_worker_409_after_a_lost_answer_counts_as_delivered(scenario: Scenario) -> None:
    entry = scenario.entry("lost")
    assert entry["state"] == "delivered"
    assert entry["delivered"] is True
    assert entry["error"] is None
    assert entry["attempts"] == 2
    assert [a["status_code"] for a in entry["attempt_log"]] == [None, 409]
    assert entry["status_code"] == 409
    pushes = [p for p in scenario.accepted if p["to"] == scenario.users["lost"]]
    assert len(pushes) == 1
    # The request LINE accepted (x-line-accepted-request-id) and its message ids are kept.
    assert entry["line_request_id"] == pushes[0]["request_id"]
    assert entry["sent_message_ids"] == [m["id"] for m in pushes[0]["sent_messages"]]
    assert scenario.stats["duplicates_suppressed"] >= 1


def test_worker_retries_rate_limit_and_server_errors(scenario: Scenario) -> None:
    ratelim = scenario.entry("ratelim")
    assert [a["status_code"] for a in ratelim["attempt_log"]] == [429, 200]
    assert ratelim["delivered"] is True
    mixed = scenario.entry("mixed")
    assert [a["status_code"] for a in mixed["attempt_log"]] == [500, 502, 504, 200]
    assert mixed["delivered"] is True
    assert mixed["attempts"] == 4


def test_worker_survives_a_hang_and_dropped_connections(scenario: Scenario) -> None:
    hung = scenario.entry("hung")
    assert hung["delivered"] is True
    assert [a["status_code"] for a in hung["attempt_log"]] == [None, 200]
    first = hung["attempt_log"][0]
    assert first["error"] and "timeout" in first["error"].lower(), first
    assert first["duration_ms"] < 5000, "the request timeout did not cut the hang short"
    dropped = scenario.entry("dropped")
    assert dropped["delivered"] is True
    assert [a["status_code"] for a in dropped["attempt_log"]] == [None, None, 200]
    assert all(a["error"] for a in dropped["attempt_log"][:2])
    assert scenario.stats["accepted_per_recipient"][scenario.users["hung"]] == 1
    assert scenario.stats["accepted_per_recipient"][scenario.users["dropped"]] == 1


def test_templating_is_json_safe_end_to_end(scenario: Scenario) -> None:
    bodies = {p["to"]: p["body"] for p in scenario.accepted}
    nasty = bodies[scenario.users["stdin1"]]
    assert nasty["to"] == scenario.users["stdin1"]
    assert nasty["messages"] == [{"type": "text", "text": f"Hello {NASTY}, you have 12 points."}]
    boolean = bodies[scenario.users["stdin2"]]
    assert boolean["messages"] == [{"type": "text", "text": "Hello Ann, you have true points."}]


# -- log -----------------------------------------------------------------------------------------------


def test_log_json_entries_have_every_key(scenario: Scenario) -> None:
    assert len(scenario.log) == 14  # ok, missing, 10 from the file, 2 from stdin
    for entry in scenario.log:
        assert entry.keys() >= LOG_KEYS, LOG_KEYS - entry.keys()
        assert entry["state"] in ("queued", "retrying", "paused", "delivered", "failed")
        assert entry["delivered"] is (entry["state"] == "delivered")
        assert entry["time"].endswith("Z") or entry["time"].endswith("+00:00"), entry["time"]
        datetime.fromisoformat(entry["time"])
        assert entry["retry_key"]
        for attempt in entry["attempt_log"]:
            assert {"time", "status_code", "error", "line_request_id", "duration_ms"} <= attempt.keys()
    keys = [e["retry_key"] for e in scenario.log]
    assert len(set(keys)) == len(keys)


def test_log_csv_has_a_header_and_one_row_per_event(scenario: Scenario) -> None:
    result = scenario.cli.ok("log", ACTIVATION, "--format", "csv")
    rows = list(csv.reader(io.StringIO(result.stdout)))
    header, body = rows[0], rows[1:]
    for key in LOG_KEYS - {"attempt_log"}:
        assert key in header, key
    assert len(body) == len(scenario.log)
    by_id = {row[header.index("event_id")]: row for row in body}
    assert by_id.keys() == {e["event_id"] for e in scenario.log}
    assert by_id["retried"][header.index("state")] == "delivered"
    assert by_id["retried"][header.index("attempts")] == "3"
    assert by_id["exhausted"][header.index("status_code")] == "503"


def test_log_failed_filters(scenario: Scenario) -> None:
    failed = scenario.cli.log_json(ACTIVATION, "--failed")
    assert {e["event_id"] for e in failed} == {"missing", "exhausted", "refused", "badrcpt"}
    assert all(e["state"] == "failed" for e in failed)


def test_log_limit(scenario: Scenario) -> None:
    limited = scenario.cli.log_json(ACTIVATION, "--limit", "2")
    assert len(limited) == 2
    # The newest two events: the ones read from stdin.
    assert {e["event_id"] for e in limited} == {"stdin1", "stdin2"}


def test_log_table_is_the_default_format(scenario: Scenario) -> None:
    result = scenario.cli.ok("log", ACTIVATION)
    for text in ("retried", "exhausted", "delivered", "failed", "Variable not found: name"):
        assert text in result.stdout, text


def test_log_unknown_activation_exits_non_zero(scenario: Scenario) -> None:
    result = scenario.cli("log", "no-such-activation", "--format", "json")
    assert result.returncode != 0, describe(result)
    assert "no-such-activation" in result.stderr

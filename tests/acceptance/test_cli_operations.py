"""Acceptance: the verbs the CLI gained so that it offers what the API and the console offer
(``auth rotate``, ``activation preview``, ``activation replay``, ``activation event``, ``log --state``)."""

from __future__ import annotations

import json

from cli_support import DEMO_TOKEN, Cli, Setup, describe, new_user


def test_preview_prints_the_request_an_event_would_make_and_sends_nothing(setup: Setup) -> None:
    setup.activation("welcome")
    uid = new_user()
    shown = setup.cli.ok("activation", "preview", "welcome", "--event", setup.event(uid))
    preview = json.loads(shown.stdout)
    assert preview["recipient"] == uid
    assert preview["request"]["url"] == setup.sim.url + "/v2/bot/message/push"
    assert preview["request"]["body"] == {
        "to": uid,
        "messages": [{"type": "text", "text": "Hello Ann, you have 12 points."}],
        "customAggregationUnits": ["welcome"],
    }
    assert preview["request"]["headers"]["Authorization"] == "Bearer <stored token>"
    assert setup.sim.stats()["requests_by_endpoint"].get("push") is None


def test_preview_of_an_event_that_cannot_render_names_the_missing_variable(setup: Setup) -> None:
    setup.activation("welcome")
    result = setup.cli("activation", "preview", "welcome", "--event", json.dumps({"uid": new_user()}))
    assert result.returncode == 1, describe(result)
    assert "event: this event would be recorded as failed" in result.stderr and "name" in result.stderr


def test_replay_queues_a_failed_event_again_and_the_worker_delivers_it(setup: Setup) -> None:
    cli, sim = setup.cli, setup.sim
    setup.activation("welcome", "--max-retries", "0")
    uid = new_user()
    sim.patch({"script": {uid: [503]}})  # one refusal, then LINE is fine again
    cli.ok("trigger", "welcome", "--event", setup.event(uid, "e1"))
    cli.ok("worker", "--until-idle")
    assert [e["state"] for e in cli.log_json("welcome")] == ["failed"]

    replayed = cli.ok("activation", "replay", "welcome", "e1")
    assert "1 failed event(s) of welcome queued again" in replayed.stdout
    cli.ok("worker", "--until-idle")
    [entry] = cli.log_json("welcome")
    assert entry["state"] == "delivered" and entry["attempts"] == 2
    assert len({a["attempt"] for a in entry["attempt_log"]}) == 2

    again = cli("activation", "replay", "welcome", "e1")  # delivered: nothing to replay
    assert again.returncode == 1, describe(again)
    assert "not replayed: e1" in again.stderr


def test_event_shows_one_event_with_its_attempts(setup: Setup) -> None:
    cli = setup.cli
    setup.activation("welcome")
    cli.ok("trigger", "welcome", "--event", setup.event(new_user(), "e1"))
    cli.ok("worker", "--until-idle")
    event = json.loads(cli.ok("activation", "event", "welcome", "e1").stdout)
    assert event["event_id"] == "e1" and event["state"] == "delivered"
    missing = cli("activation", "event", "welcome", "nope")
    assert missing.returncode == 1 and "nope" in missing.stderr


def test_log_state_filters_the_activation_table(setup: Setup) -> None:
    cli = setup.cli
    setup.activation("welcome")
    cli.ok("trigger", "welcome", "--event", setup.event(new_user(), "sent"))
    cli.ok("worker", "--until-idle")
    cli.ok("trigger", "welcome", "--event", setup.event(new_user(), "waiting"))
    assert [e["event_id"] for e in cli.log_json("welcome", "--state", "queued")] == ["waiting"]
    assert [e["event_id"] for e in cli.log_json("welcome", "--state", "delivered")] == ["sent"]
    bad = cli("log", "welcome", "--state", "lost")
    assert bad.returncode == 2 and "--state" in bad.stderr


def test_rotate_keeps_the_old_secret_when_line_refuses_the_new_one(setup: Setup) -> None:
    cli, sim = setup.cli, setup.sim
    refused = cli("auth", "rotate", "line", "--access-token", "wrong-token")
    assert refused.returncode == 1, describe(refused)
    assert "LINE refused the credentials (HTTP 401)" in refused.stderr
    assert "wrong-token" not in refused.stdout + refused.stderr
    cli.ok("auth", "test", "line")  # the stored token is still the good one

    wrong_kind = cli("auth", "rotate", "line", "--channel-secret", "s3cret")
    assert (
        wrong_kind.returncode == 1 and "channel_secret: this authentication holds an access token" in wrong_kind.stderr
    )

    rotated = cli.ok("auth", "rotate", "line", "--access-token", DEMO_TOKEN)
    assert "rotated the credentials of line (tested: Demo Official Account)" in rotated.stdout
    assert sim.stats()["requests_by_endpoint"]["bot_info"] == {"200": 3, "401": 1}


def test_apikey_create_takes_a_role_and_list_shows_it(cli: Cli) -> None:
    made = cli.ok("apikey", "create", "journeys", "--role", "trigger")
    assert made.stdout.strip().startswith("lxk_") and "(role trigger)" in made.stderr
    cli.ok("apikey", "create", "ops")
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in cli.ok("apikey", "list").stdout.splitlines()]
    rows = {c[0]: c[1] for c in cells if len(c) == 4}
    assert rows == {"journeys": "trigger", "ops": "admin"}, rows
    refused = cli("apikey", "create", "x", "--role", "root")
    assert refused.returncode == 1 and "role: must be one of admin, operator, trigger, read" in refused.stderr


def test_texts_with_square_brackets_print_as_typed_in_every_table(setup: Setup) -> None:
    # Rich would read "[/red]" as a closing tag and crash (MarkupError); users' words are not markup.
    cli = setup.cli
    setup.activation("brackets")
    odd_id = "[/red]order-[bold]1"
    cli.ok("trigger", "brackets", "--event", setup.event(new_user(), event_id=odd_id))
    cli.ok("activation", "pause", "brackets", "--reason", "[/yellow] waiting for [legal]")
    listed = cli.ok("activation", "list").stdout
    assert "paused: [/yellow] waiting for [legal]" in " ".join(listed.split())
    shown = cli.ok("activation", "show", "brackets").stdout
    assert "[/yellow] waiting for [legal]" in " ".join(shown.split())
    overview = cli.ok("overview", "brackets").stdout
    assert "paused by hand: [/yellow] waiting for [legal]" in " ".join(overview.split())
    cli.ok("activation", "resume", "brackets")
    cli.ok("worker", "--until-idle")
    log = cli.ok("log", "brackets").stdout
    assert odd_id in log and "Traceback" not in log

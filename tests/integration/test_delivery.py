"""trigger → worker → LINE simulator, on a real SQLite database and a fake clock."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from lineoa_export import activations
from lineoa_export.delivery import outbox
from lineoa_export.delivery.liveness import DEAD_AFTER
from lineoa_export.delivery.retry_policy import KEY_EXPIRED_ERROR
from lineoa_export.simulator import SimulatorOptions
from lineoa_export.testing import TEST_SECRET_KEY, pipeline, user_id


def scripted(**script: list[int | str]) -> SimulatorOptions:
    return SimulatorOptions(script=script)


def attempt_times(entry: dict) -> list[float]:
    from datetime import datetime

    return [datetime.fromisoformat(a["time"].replace("Z", "+00:00")).timestamp() for a in entry["attempt_log"]]


def test_retries_wait_2_4_8_seconds_and_reuse_key_and_body(tmp_path: Path, run, db_url: str) -> None:
    u = user_id(1)

    async def scenario() -> None:
        async with pipeline(tmp_path, scripted(**{u: [503, 500, 502]}), database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": "e1", "line_user_id": u, "name": "Ann"}])
            start = p.clock.now()
            await p.run_worker()
            entry = p.event("e1")
            assert entry["state"] == "delivered" and entry["delivered"] is True
            assert [a["status_code"] for a in entry["attempt_log"]] == [503, 500, 502, 200]
            offsets = [round(t - start, 3) for t in attempt_times(entry)]
            assert offsets == [0.0, 2.0, 6.0, 14.0]  # waits of 2, 4 and 8 seconds
            accepted = p.sim.record.accepted
            assert len(accepted) == 1
            assert accepted[0].retry_key == entry["retry_key"]
            sent = {"to": u, "messages": [{"type": "text", "text": "Hello Ann"}], "customAggregationUnits": ["welcome"]}
            assert accepted[0].body == orjson.dumps(sent)
            assert p.sim.record.stats()["key_body_mismatches"] == 0

    run(scenario())


def test_after_the_last_retry_the_event_stops_with_status_and_error(tmp_path: Path, run, db_url: str) -> None:
    bad, good = user_id(1), user_id(2)

    async def scenario() -> None:
        async with pipeline(tmp_path, scripted(**{bad: [503] * 10}), database_url=db_url) as p:
            p.create_activation()
            p.trigger(
                [
                    {"event_id": "bad", "line_user_id": bad, "name": "A"},
                    {"event_id": "good", "line_user_id": good, "name": "B"},
                ]
            )
            await p.run_worker()
            entry = p.event("bad")
            assert entry["state"] == "failed" and entry["delivered"] is False
            assert entry["attempts"] == 4  # the first attempt and 3 retries
            assert entry["status_code"] == 503
            assert "gave up after 3 retries" in entry["error"]
            assert p.event("good")["state"] == "delivered"  # other events go on
            assert p.sim.options.script[bad] == [503] * 6  # nothing sent after the last retry

    run(scenario())


def test_custom_retry_parameters_are_honoured(tmp_path: Path, run, db_url: str) -> None:
    u = user_id(3)

    async def scenario() -> None:
        async with pipeline(tmp_path, scripted(**{u: [429, 429, 429]}), database_url=db_url) as p:
            p.create_activation(max_retries=2, initial_retry_delay=0.5, retry_delay_multiple=3)
            p.trigger([{"event_id": "e", "line_user_id": u, "name": "C"}])
            start = p.clock.now()
            await p.run_worker()
            entry = p.event("e")
            assert [round(t - start, 3) for t in attempt_times(entry)] == [0.0, 0.5, 2.0]
            assert entry["state"] == "failed" and entry["status_code"] == 429
            assert "rate limit" in entry["error"]

    run(scenario())


def test_lost_answer_then_409_counts_as_delivered_once(tmp_path: Path, run, db_url: str) -> None:
    u = user_id(4)

    async def scenario() -> None:
        async with pipeline(tmp_path, scripted(**{u: ["accept-then-drop"]}), database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": "e", "line_user_id": u, "name": "D"}])
            await p.run_worker()
            entry = p.event("e")
            assert entry["state"] == "delivered"
            statuses = [a["status_code"] for a in entry["attempt_log"]]
            assert statuses == [None, 409]
            assert entry["attempt_log"][0]["error"].startswith("connection error")
            original = p.sim.record.accepted[0]
            assert entry["line_request_id"] == original.request_id  # the request LINE accepted
            assert entry["attempt_log"][1]["line_request_id"] != original.request_id  # the 409's own id, kept
            assert entry["sent_message_ids"] == list(original.sent_message_ids)
            assert p.sim.record.stats()["accepted_pushes"] == 1
            assert p.sim.record.stats()["duplicates_suppressed"] == 1

    run(scenario())


def test_other_4xx_fail_at_once_without_retry(tmp_path: Path, run, db_url: str) -> None:
    u = user_id(5)

    async def scenario() -> None:
        async with pipeline(tmp_path, scripted(**{u: [400]}), database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": "e", "line_user_id": u, "name": "E"}])
            await p.run_worker()
            entry = p.event("e")
            assert (entry["state"], entry["attempts"], entry["status_code"]) == ("failed", 1, 400)
            assert entry["error"] == "Failed to send messages"

    run(scenario())


def test_render_failures_and_duplicates_are_recorded_not_sent(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation()
            results = p.trigger(
                [
                    {"event_id": "ok", "line_user_id": user_id(1), "name": "F"},
                    {"event_id": "ok", "line_user_id": user_id(1), "name": "F"},
                    {"event_id": "missing", "line_user_id": user_id(2)},
                    {"event_id": "badrcpt", "line_user_id": "someone", "name": "G"},
                ]
            )
            assert [r.status for r in results] == ["accepted", "duplicate", "failed", "failed"]
            assert results[2].error == "Variable not found: name"
            assert "invalid recipient 'someone'" in (results[3].error or "")
            assert p.trigger([{"event_id": "ok", "line_user_id": user_id(1), "name": "F"}])[0].status == "duplicate"
            await p.run_worker()
            states = {e["event_id"]: (e["state"], e["attempts"]) for e in p.log()}
            assert states == {"ok": ("delivered", 1), "missing": ("failed", 0), "badrcpt": ("failed", 0)}
            assert p.sim.record.stats()["accepted_pushes"] == 1

    run(scenario())


def test_monthly_limit_pauses_the_channel_then_quota_check_resumes(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, SimulatorOptions(), concurrency=1, batch_size=1, database_url=db_url) as p:
            p.sim.update_options({"channels": {"1234567890": {"quota": 3}}})
            p.create_activation()
            p.create_activation("other")  # same authentication, so same channel
            p.trigger([{"event_id": f"e{i}", "line_user_id": user_id(i), "name": "H"} for i in range(6)])
            p.trigger([{"event_id": "o1", "line_user_id": user_id(99), "name": "I"}], activation="other")
            worker = p.worker()
            await worker.run(until_idle=True)  # must return: paused events are not waited for
            states = [e["state"] for e in p.log() + p.log("other")]
            assert states.count("delivered") == 3
            assert states.count("paused") == 4 and "failed" not in states
            for name in ("welcome", "other"):
                reason = activations.get(p.ctx.db, name).pause_reason or ""
                assert "monthly" in reason
            # A trigger while paused is held too, with its key:
            assert p.trigger([{"event_id": "late", "line_user_id": user_id(50), "name": "J"}])[0].status == "paused"

            checker = p.worker()
            assert await checker.check_quotas() == []  # still no room
            p.sim.update_options({"channels": {"1234567890": {"quota": 100}}})
            assert await checker.check_quotas() == [activations.get(p.ctx.db, "welcome").channel_key]
            await checker.run(until_idle=True)  # the worker that saw the room delivers (and closes its transport)
            everything = p.log() + p.log("other")
            assert all(e["state"] == "delivered" for e in everything), everything
            stats = p.sim.record.stats()
            assert stats["accepted_pushes"] == 8 and stats["max_accepted_per_recipient"] == 1

    run(scenario())


def test_manual_pause_and_resume(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": "a", "line_user_id": user_id(1), "name": "K"}])
            activations.pause(p.ctx.db, "welcome", "campaign on hold", now=p.clock.now())
            assert p.trigger([{"event_id": "b", "line_user_id": user_id(2), "name": "L"}])[0].status == "paused"
            await p.run_worker()
            assert {e["state"] for e in p.log()} == {"paused"}
            assert activations.get(p.ctx.db, "welcome").pause_reason == "campaign on hold"
            activations.resume(p.ctx.db, "welcome", now=p.clock.now())
            await p.run_worker()
            assert {e["state"] for e in p.log()} == {"delivered"}

    run(scenario())


def test_rate_limit_429_is_retried_and_slows_the_channel(tmp_path: Path, run, db_url: str) -> None:
    u = user_id(6)

    async def scenario() -> None:
        async with pipeline(tmp_path, scripted(**{u: [429]}), database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": "e", "line_user_id": u, "name": "M"}])
            worker = p.worker()
            await worker.run(until_idle=True)
            assert p.event("e")["state"] == "delivered"
            channel_key = activations.get(p.ctx.db, "welcome").channel_key
            assert worker._limits.for_channel(channel_key).slowed

    run(scenario())


def test_minted_token_is_reminted_once_on_401(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_auth(minted=True, name="minted")
            p.create_activation(authentication="minted")
            p.trigger([{"event_id": "a", "line_user_id": user_id(1), "name": "N"}])
            worker = p.worker()
            task = worker.run(until_idle=True)
            await task
            p.sim.revoke_tokens()  # the cached token dies
            p.trigger([{"event_id": "b", "line_user_id": user_id(2), "name": "O"}])
            await p.run_worker()
            assert {e["state"] for e in p.log()} == {"delivered"}

    run(scenario())


def test_401_on_a_long_lived_token_pauses_the_channel(tmp_path: Path, run, db_url: str) -> None:
    u = user_id(7)

    async def scenario() -> None:
        async with pipeline(tmp_path, scripted(**{u: [401]}), database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": "e", "line_user_id": u, "name": "P"}])
            await p.run_worker()
            entry = p.event("e")
            assert entry["state"] == "paused" and entry["status_code"] == 401
            assert "credentials" in (activations.get(p.ctx.db, "welcome").pause_reason or "")
            activations.resume(p.ctx.db, "welcome", now=p.clock.now())
            await p.run_worker()
            entry = p.event("e")
            assert entry["state"] == "delivered" and entry["attempts"] == 2

    run(scenario())


def test_a_worker_that_dies_mid_send_loses_nothing_and_sends_nothing_twice(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": f"e{i}", "line_user_id": user_id(i), "name": "Q"} for i in range(5)])
            # A worker claims everything, LINE accepts two of the pushes, then the worker dies
            # before recording anything.
            lane = activations.get(p.ctx.db, "welcome").channel_key
            claimed = outbox.claim(
                p.ctx.db,
                worker="dead",
                now=p.clock.now(),
                lease_seconds=p.ctx.settings.lease_seconds,
                wants=[(lane, 10)],
                alive_since=p.clock.now() - DEAD_AFTER,
            )
            assert len(claimed) == 5
            import aiohttp

            async with aiohttp.ClientSession() as http:
                for c in claimed[:2]:
                    async with http.post(
                        p.sim.url + "/v2/bot/message/push",
                        data=c.body,
                        headers={
                            "Authorization": "Bearer demo-access-token",
                            "Content-Type": "application/json",
                            "X-Line-Retry-Key": c.retry_key,
                        },
                    ) as resp:
                        assert resp.status == 200
            crashed_at = p.clock.now()
            await p.run_worker()  # the dead worker's leases must run out first
            log = {e["event_id"]: e for e in p.log()}
            first_tries = [attempt_times(e)[0] for e in log.values()]
            assert min(first_tries) >= crashed_at + p.ctx.settings.lease_seconds
            assert all(e["state"] == "delivered" for e in log.values())
            sent_before = {c.retry_key for c in claimed[:2]}
            last_status = {e["retry_key"]: e["attempt_log"][-1]["status_code"] for e in log.values()}
            assert sorted(last_status.values()) == [200, 200, 200, 409, 409]
            assert {key for key, status in last_status.items() if status == 409} == sent_before
            stats = p.sim.record.stats()
            assert stats["accepted_pushes"] == 5 and stats["max_accepted_per_recipient"] == 1
            assert stats["key_body_mismatches"] == 0

    run(scenario())


def test_an_event_whose_first_attempt_is_over_24h_old_is_never_sent_again(tmp_path: Path, run, db_url: str) -> None:
    u = user_id(8)

    async def scenario() -> None:
        async with pipeline(tmp_path, scripted(**{u: ["monthly"]}), database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": "e", "line_user_id": u, "name": "R"}])
            await p.run_worker()
            assert p.event("e")["state"] == "paused"
            p.clock.advance(24 * 3600 + 1)
            activations.resume(p.ctx.db, "welcome", now=p.clock.now())
            await p.run_worker()
            entry = p.event("e")
            assert entry["state"] == "failed" and entry["error"] == KEY_EXPIRED_ERROR
            assert entry["attempts"] == 1
            assert p.sim.record.stats()["accepted_pushes"] == 0

    run(scenario())


def test_many_events_with_random_faults_are_each_delivered_once(tmp_path: Path, run, db_url: str) -> None:
    options = SimulatorOptions(fault_500=0.1, fault_503=0.1, fault_rate_429=0.05, drop_probability=0.05, seed=3)

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url) as p:
            p.create_activation(max_retries=20, initial_retry_delay=0.1)
            p.trigger([{"event_id": str(i), "line_user_id": user_id(i), "name": "S"} for i in range(500)])
            await p.run_worker()
            log = p.log()
            assert len(log) == 500 and all(e["state"] == "delivered" for e in log)
            stats = p.sim.record.stats()
            assert stats["accepted_pushes"] == 500 and stats["max_accepted_per_recipient"] == 1
            attempts = sum(e["attempts"] for e in log)
            assert attempts == sum(stats["requests_by_endpoint"]["push"].values()) + stats["dropped"]

    run(scenario())


def test_two_workers_share_one_outbox_without_sending_anything_twice(tmp_path: Path, run, db_url: str) -> None:
    """Two workers (on PostgreSQL: two database connections claiming with SKIP LOCKED), on the
    real clock: retries wait 0.01 s."""
    options = SimulatorOptions(fault_503=0.1, seed=11)

    async def scenario() -> None:
        import asyncio

        from lineoa_export.clock import SystemClock

        async with pipeline(tmp_path, options, database_url=db_url, batch_size=20, clock=SystemClock()) as p:
            p.create_activation(initial_retry_delay=0.01, max_retries=10)
            p.trigger([{"event_id": str(i), "line_user_id": user_id(i), "name": "T"} for i in range(400)])
            a, b = p.worker(inline_sqlite=False), p.worker(inline_sqlite=False)
            stats = await asyncio.gather(a.run(until_idle=True), b.run(until_idle=True))
            log = p.log()
            assert len(log) == 400 and {e["state"] for e in log} == {"delivered"}
            sim = p.sim.record.stats()
            assert sim["accepted_pushes"] == 400 and sim["max_accepted_per_recipient"] == 1
            assert sim["duplicates_suppressed"] == 0  # no event was ever held by both
            assert all(s.states.get("delivered", 0) > 0 for s in stats), "both workers took part"

    run(scenario())


def test_credentials_the_worker_cannot_decrypt_pause_the_channel(tmp_path: Path, run, db_url: str) -> None:
    """A changed LINEOA_EXPORT_SECRET_KEY must not make events loop forever: the channel pauses."""
    from lineoa_export.delivery.worker import Worker
    from lineoa_export.vault import Vault

    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": "e", "line_user_id": user_id(1), "name": "U"}])
            other_key = Vault.from_secret("not the key the credentials were sealed with", p.ctx.api_hosts)
            await Worker(p.ctx.db, other_key, p.ctx.settings, clock=p.clock).run(until_idle=True)
            entry = p.event("e")
            assert entry["state"] == "paused"
            reason = activations.get(p.ctx.db, "welcome").pause_reason or ""
            assert "stored credentials unusable" in reason and "cannot be decrypted" in reason
            assert p.sim.record.stats()["accepted_pushes"] == 0
            activations.resume(p.ctx.db, "welcome", now=p.clock.now())
            await p.run_worker()  # with the right key
            assert p.event("e")["state"] == "delivered"

    run(scenario())


def test_a_stored_api_url_no_longer_allowed_sends_nothing_and_pauses_naming_the_setting(
    tmp_path: Path, run, db_url: str
) -> None:
    """Saved while the simulator's host was allowed; the operator then removed it from the setting."""
    from lineoa_export.delivery.worker import Worker
    from lineoa_export.vault import Vault

    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": "e", "line_user_id": user_id(1), "name": "U"}])
            settings = p.ctx.settings.model_copy(update={"allowed_api_hosts": ()})
            line_only = Vault.from_secret(TEST_SECRET_KEY, settings.api_hosts)
            await Worker(p.ctx.db, line_only, settings, clock=p.clock).run(until_idle=True)
            assert p.event("e")["state"] == "paused"
            reason = activations.get(p.ctx.db, "welcome").pause_reason or ""
            assert "LINEOA_EXPORT_ALLOWED_API_HOSTS" in reason and p.sim.url in reason
            assert "LINE refused" not in reason  # nothing was sent
            assert p.sim.record.stats()["requests_by_endpoint"] == {}  # not even a token request
            activations.resume(p.ctx.db, "welcome", now=p.clock.now())
            await p.run_worker()  # allowed again
            assert p.event("e")["state"] == "delivered"

    run(scenario())


@pytest.mark.parametrize("stored_url", ["http://user:pw@127.0.0.1:19999", "http://a..b", "http://127.0.0.1:1/#x"])
def test_an_unusable_api_url_stored_by_an_older_version_pauses_its_channel_instead_of_looping(
    tmp_path: Path, run, stored_url: str
) -> None:
    """Issue 8, finding 3: such URLs are refused at input now, but a database from 0.1.0 may hold one."""
    from lineoa_export.authentications import Credentials

    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            p.ctx.db.run("auth_insert", {
                "name": "old", "kind": "access_token", "api_url": stored_url, "channel_id": None,
                "channel_key": "auth:old", "credentials": Credentials.from_options("t", None, None).seal(p.ctx.vault),
                "bot_user_id": None, "bot_name": None, "created_at": 0.0, "webhook_secret_set": False,
            })  # fmt: skip
            p.create_activation(authentication="old")
            p.trigger([{"event_id": "e", "line_user_id": user_id(1), "name": "U"}])
            await p.run_worker()  # returns: nothing loops
            entry = p.event("e")
            assert entry["state"] == "paused"
            assert entry["attempts"] == 1 and "api_url" in entry["attempt_log"][0]["error"]  # recorded, once
            reason = activations.get(p.ctx.db, "welcome").pause_reason or ""
            assert "api_url" in reason and "user:pw@127" not in reason

    run(scenario())


def test_the_worker_survives_a_database_that_fails_a_claim(
    tmp_path: Path, run, caplog: pytest.LogCaptureFixture
) -> None:
    from lineoa_export.delivery.worker import Worker
    from lineoa_export.store.database import Database

    class FailsOnce(Database):
        """The real database, whose first write transactions fail as a locked SQLite would."""

        failures = 3

        def transaction(self):  # type: ignore[no-untyped-def]
            if self.failures:
                self.failures -= 1
                raise sqlite3.OperationalError("database is locked")
            return super().transaction()

    import sqlite3

    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            p.create_activation()
            p.trigger([{"event_id": "e", "line_user_id": user_id(1), "name": "V"}])
            flaky = FailsOnce(p.ctx.settings.database_url)
            await Worker(flaky, p.ctx.vault, p.ctx.settings, clock=p.clock).run(until_idle=True)
            flaky.close()
            assert p.event("e")["state"] == "delivered"

    with caplog.at_level("WARNING"):
        run(scenario())
    failed = [r for r in caplog.records if r.getMessage().startswith("claiming events failed")]
    # One line a try, a traceback only for the first: an outage does not flood the log.
    assert len(failed) == 3 and [bool(r.exc_info) for r in failed] == [True, False, False]
    assert any(r.getMessage() == "claiming events works again" for r in caplog.records)


def test_pausing_an_activation_holds_the_events_a_running_worker_already_claimed(tmp_path: Path, run) -> None:
    from lineoa_export.delivery.states import EventState

    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            p.create_activation()
            p.trigger([{"event_id": "e", "line_user_id": user_id(1), "name": "W"}])
            worker = p.worker()
            key = activations.get(p.ctx.db, "welcome").channel_key
            [claimed] = outbox.claim(
                p.ctx.db,
                worker=worker.id,
                now=p.clock.now(),
                lease_seconds=30,
                wants=[(key, 5)],
                alive_since=p.clock.now() - DEAD_AFTER,
            )
            worker.hold_activation("welcome")  # what `serve` does when the API or console pauses it
            lane = worker._lane(key)
            held, outcome = await worker._deliver(lane, claimed, generation=0)
            assert held.state is EventState.PAUSED and outcome is None
            assert p.sim.record.stats()["accepted_pushes"] == 0
            sent, outcome = await worker._deliver(lane, claimed, generation=1)  # claimed after a resume
            assert sent.state is EventState.DELIVERED and p.sim.record.stats()["accepted_pushes"] == 1
            await worker._transport.close()

    run(scenario())

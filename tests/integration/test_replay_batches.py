"""Issue 8, finding 7: a replay is bounded and done in batches, so it never holds the write lock
for long (100,000 ids in one replay held it for about 15 s and stalled triggers)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from lineoa_export.delivery import outbox
from lineoa_export.delivery.outbox import REPLAY_BATCH
from lineoa_export.store.database import Database, Tx
from lineoa_export.testing import pipeline, user_id

N = 2 * REPLAY_BATCH + 200


def count_transactions(db: Database) -> list[int]:
    """Wrap ``db.transaction`` (the real one) to count the transactions a call makes."""
    counted: list[int] = []
    original = db.transaction

    @contextlib.contextmanager
    def counting() -> Iterator[Tx]:
        counted.append(1)
        with original() as tx:
            yield tx

    db.transaction = counting  # type: ignore[method-assign]
    return counted


def fail_all(db: Database) -> None:
    """Every event of the test has failed (as after LINE refused them); a test shortcut past the worker."""
    with db.transaction() as tx:
        tx._conn.execute("UPDATE events SET state = 'failed' WHERE activation = 'welcome'")  # type: ignore[attr-defined]


def test_replaying_all_failed_events_takes_one_short_transaction_per_batch(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": f"e{i}", "line_user_id": user_id(i), "name": "x"} for i in range(N)])
            fail_all(p.ctx.db)
            transactions = count_transactions(p.ctx.db)

            result = outbox.replay_failed(p.ctx.db, "welcome", None, now=p.clock.now())

            assert sorted(result.replayed) == sorted(f"e{i}" for i in range(N))
            assert result.replayed[:3] == ["e0", "e1", "e2"]  # in the order they were accepted
            assert len(transactions) == N // REPLAY_BATCH + 1  # 500, 500 and 200: the lock is given back twice
            assert all(e["state"] == "queued" for e in p.log())

    run(scenario())


def test_replaying_named_events_takes_one_transaction_per_batch(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": f"e{i}", "line_user_id": user_id(i), "name": "x"} for i in range(N)])
            fail_all(p.ctx.db)
            transactions = count_transactions(p.ctx.db)
            wanted = [f"e{i}" for i in range(N)] + ["unknown"]

            result = outbox.replay_failed(p.ctx.db, "welcome", wanted, now=p.clock.now())

            assert result.replayed == wanted[:-1] and result.not_replayable == ["unknown"]
            assert len(transactions) == N // REPLAY_BATCH + 1

    run(scenario())

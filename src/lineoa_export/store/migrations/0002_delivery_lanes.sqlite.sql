-- Delivery lanes (issue 7): breaker pauses, live workers, claims per channel.
-- IF NOT EXISTS: databases made by main between the lanes commit and the versioned store
-- (no version recorded, so taken for 0.1.0's) already have some of this.

-- channel_pauses gains kind 'breaker' and the breaker's probe_at and trips. SQLite cannot
-- change a CHECK constraint, so the table is rebuilt; no other table refers to it.
CREATE TABLE channel_pauses_new (
    channel_key  TEXT PRIMARY KEY,
    reason       TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('quota', 'credentials', 'breaker')),
    since        DOUBLE PRECISION NOT NULL,
    probe_at     DOUBLE PRECISION,           -- breaker: when the next probe may go
    trips        INTEGER NOT NULL DEFAULT 0  -- breaker: trips since it last closed
);
INSERT INTO channel_pauses_new (channel_key, reason, kind, since)
    SELECT channel_key, reason, kind, since FROM channel_pauses;
DROP TABLE channel_pauses;
ALTER TABLE channel_pauses_new RENAME TO channel_pauses;

-- Live workers: a worker whose heartbeat is older than a few seconds is dead, and the
-- events it held are claimed by the others (see delivery/liveness.py).
CREATE TABLE IF NOT EXISTS workers (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    started_at    DOUBLE PRECISION NOT NULL,
    heartbeat_at  DOUBLE PRECISION NOT NULL
);

-- Claims are per channel (lanes): each channel's due events in order, from one index range.
CREATE INDEX IF NOT EXISTS events_due_by_channel ON events (channel_key, next_attempt_at)
    WHERE state IN ('queued', 'retrying');

-- Delivery lanes (issue 7): breaker pauses, live workers, claims per channel.
-- IF (NOT) EXISTS: databases made by main between the lanes commit and the versioned store
-- (no version recorded, so taken for 0.1.0's) already have some of this.

-- channel_pauses gains kind 'breaker' and the breaker's probe_at and trips.
ALTER TABLE channel_pauses
    DROP CONSTRAINT IF EXISTS channel_pauses_kind_check,
    ADD CONSTRAINT channel_pauses_kind_check CHECK (kind IN ('quota', 'credentials', 'breaker')),
    ADD COLUMN IF NOT EXISTS probe_at DOUBLE PRECISION,           -- breaker: when the next probe may go
    ADD COLUMN IF NOT EXISTS trips INTEGER NOT NULL DEFAULT 0;   -- breaker: trips since it last closed

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
-- (Built inside the upgrade's transaction: writes to events wait for it; see README, Upgrading.)
CREATE INDEX IF NOT EXISTS events_due_by_channel ON events (channel_key, next_attempt_at)
    WHERE state IN ('queued', 'retrying');

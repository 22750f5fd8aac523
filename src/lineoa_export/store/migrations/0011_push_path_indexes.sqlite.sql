-- Less for every push to update (issue 7, row (d)); the PostgreSQL twin says why these indexes go.
--
-- events.state's CHECK is spelled with OR instead of IN: SQLite 3.40 checks an IN list of three
-- or more values by building a temporary table each time, ≈2 µs for every event stored or moved
-- to another state (every accept and every outcome); the ORs test the same seven values at no
-- cost. SQLite cannot change a CHECK constraint, so the table is rebuilt as in 0006 (one copy
-- of the events table, inside the upgrade's transaction: ≈ 5 s for a million events).
CREATE TABLE events_new (
    id                   BIGSERIAL_OR_ROWID,
    activation           TEXT NOT NULL REFERENCES activations (name) ON DELETE CASCADE,
    event_id             TEXT NOT NULL,
    channel_key          TEXT NOT NULL,
    recipient            TEXT,
    body                 BYTEA,             -- the exact push request body, sent byte for byte
    retry_key            TEXT NOT NULL,     -- X-Line-Retry-Key, fixed when the event was accepted
    state                TEXT NOT NULL CHECK (state = 'queued' OR state = 'retrying' OR state = 'paused'
                                              OR state = 'delivered' OR state = 'failed' OR state = 'suppressed'
                                              OR state = 'deferred'),
    attempts             INTEGER NOT NULL DEFAULT 0,
    retries              INTEGER NOT NULL DEFAULT 0,  -- retries used of the current budget (replay resets)
    accepted_at          DOUBLE PRECISION NOT NULL,
    first_attempt_at     DOUBLE PRECISION,
    next_attempt_at      DOUBLE PRECISION,
    finished_at          DOUBLE PRECISION,
    leased_until         DOUBLE PRECISION,
    leased_by            TEXT,
    status_code          INTEGER,
    error                TEXT,
    line_request_id      TEXT,
    accepted_request_id  TEXT,
    sent_message_ids     TEXT,
    aggregation_unit     TEXT,
    counted_at           DOUBLE PRECISION,
    time_zone            TEXT,
    UNIQUE (activation, event_id)
);
INSERT INTO events_new (id, activation, event_id, channel_key, recipient, body, retry_key, state, attempts, retries,
                        accepted_at, first_attempt_at, next_attempt_at, finished_at, leased_until, leased_by,
                        status_code, error, line_request_id, accepted_request_id, sent_message_ids, aggregation_unit,
                        counted_at, time_zone)
    SELECT id, activation, event_id, channel_key, recipient, body, retry_key, state, attempts, retries,
           accepted_at, first_attempt_at, next_attempt_at, finished_at, leased_until, leased_by,
           status_code, error, line_request_id, accepted_request_id, sent_message_ids, aggregation_unit,
           counted_at, time_zone FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_by_activation ON events (activation, id);
-- 0010_console_at_scale made this one; the rebuild above dropped it with the old table.
CREATE INDEX events_by_activation_state ON events (activation, state, id);
CREATE INDEX events_due_by_channel ON events (channel_key, next_attempt_at)
    WHERE state IN ('queued', 'retrying');
CREATE INDEX events_paused_by_channel ON events (channel_key) WHERE state = 'paused';
CREATE INDEX events_deferred ON events (next_attempt_at) WHERE state = 'deferred';
CREATE INDEX events_counted ON events (activation, recipient, counted_at) WHERE counted_at IS NOT NULL;
CREATE INDEX events_finished_by_channel ON events (channel_key, finished_at) WHERE finished_at IS NOT NULL;

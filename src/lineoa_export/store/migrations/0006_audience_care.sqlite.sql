-- Audience care (issue 9): blocked users, frequency caps, quiet hours, webhook forwarding.

-- events.state gains 'suppressed' (not sent on purpose: blocked, over the cap, quiet hours with
-- drop) and 'deferred' (waits for next_attempt_at: quiet hours, over the cap with defer).
-- counted_at: when the event was counted against its activation's frequency cap (it went out,
-- or is on its way). time_zone: the recipient's own zone, read from the event when accepted.
-- SQLite cannot change a CHECK constraint, so the table is rebuilt (see migrations/__init__.py).
CREATE TABLE events_new (
    id                   BIGSERIAL_OR_ROWID,
    activation           TEXT NOT NULL REFERENCES activations (name) ON DELETE CASCADE,
    event_id             TEXT NOT NULL,
    channel_key          TEXT NOT NULL,
    recipient            TEXT,
    body                 BYTEA,             -- the exact push request body, sent byte for byte
    retry_key            TEXT NOT NULL,     -- X-Line-Retry-Key, fixed when the event was accepted
    state                TEXT NOT NULL CHECK (state IN ('queued', 'retrying', 'paused', 'delivered', 'failed',
                                                        'suppressed', 'deferred')),
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
                        status_code, error, line_request_id, accepted_request_id, sent_message_ids, aggregation_unit)
    SELECT id, activation, event_id, channel_key, recipient, body, retry_key, state, attempts, retries,
           accepted_at, first_attempt_at, next_attempt_at, finished_at, leased_until, leased_by,
           status_code, error, line_request_id, accepted_request_id, sent_message_ids, aggregation_unit FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_due ON events (next_attempt_at) WHERE state IN ('queued', 'retrying');
CREATE INDEX events_unfinished_by_channel ON events (channel_key)
    WHERE state IN ('queued', 'retrying', 'paused');
CREATE INDEX events_by_activation ON events (activation, id);
CREATE INDEX events_due_by_channel ON events (channel_key, next_attempt_at)
    WHERE state IN ('queued', 'retrying');
-- Deferred events whose time has come are put back in line about once a second.
CREATE INDEX events_deferred ON events (next_attempt_at) WHERE state = 'deferred';
-- A capped activation counts what went to one recipient in its window.
CREATE INDEX events_counted ON events (activation, recipient, counted_at) WHERE counted_at IS NOT NULL;

-- An activation's frequency cap and quiet hours (NULL: none).
ALTER TABLE activations ADD COLUMN frequency_cap TEXT;
ALTER TABLE activations ADD COLUMN over_cap TEXT NOT NULL DEFAULT 'suppress' CHECK (over_cap IN ('suppress', 'defer'));
ALTER TABLE activations ADD COLUMN quiet_hours TEXT;
ALTER TABLE activations ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Asia/Tokyo';
ALTER TABLE activations ADD COLUMN time_zone_attribute TEXT;
ALTER TABLE activations ADD COLUMN in_quiet_hours TEXT NOT NULL DEFAULT 'defer' CHECK (in_quiet_hours IN ('defer', 'drop'));

-- Where verified webhook requests are re-sent (the customer's own bot), and the failures.
ALTER TABLE authentications ADD COLUMN forward_webhook TEXT;
CREATE TABLE webhook_forward_failures (
    id              BIGSERIAL_OR_ROWID,
    authentication  TEXT NOT NULL,
    failed_at       DOUBLE PRECISION NOT NULL,
    attempts        INTEGER NOT NULL,
    error           TEXT NOT NULL
);
CREATE INDEX webhook_forward_failures_by_auth ON webhook_forward_failures (authentication, id);

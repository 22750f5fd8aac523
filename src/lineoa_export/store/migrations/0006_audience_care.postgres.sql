-- Audience care (issue 9): blocked users, frequency caps, quiet hours, webhook forwarding.

-- events.state gains 'suppressed' (not sent on purpose: blocked, over the cap, quiet hours with
-- drop) and 'deferred' (waits for next_attempt_at: quiet hours, over the cap with defer).
-- counted_at: when the event was counted against its activation's frequency cap (it went out,
-- or is on its way). time_zone: the recipient's own zone, read from the event when accepted.
ALTER TABLE events
    DROP CONSTRAINT events_state_check,
    ADD CONSTRAINT events_state_check CHECK (state IN ('queued', 'retrying', 'paused', 'delivered', 'failed',
                                                       'suppressed', 'deferred')),
    ADD COLUMN counted_at DOUBLE PRECISION,
    ADD COLUMN time_zone TEXT;
-- Deferred events whose time has come are put back in line about once a second.
CREATE INDEX events_deferred ON events (next_attempt_at) WHERE state = 'deferred';
-- A capped activation counts what went to one recipient in its window.
CREATE INDEX events_counted ON events (activation, recipient, counted_at) WHERE counted_at IS NOT NULL;

-- An activation's frequency cap and quiet hours (NULL: none).
ALTER TABLE activations
    ADD COLUMN frequency_cap TEXT,
    ADD COLUMN over_cap TEXT NOT NULL DEFAULT 'suppress' CHECK (over_cap IN ('suppress', 'defer')),
    ADD COLUMN quiet_hours TEXT,
    ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Asia/Tokyo',
    ADD COLUMN time_zone_attribute TEXT,
    ADD COLUMN in_quiet_hours TEXT NOT NULL DEFAULT 'defer' CHECK (in_quiet_hours IN ('defer', 'drop'));

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

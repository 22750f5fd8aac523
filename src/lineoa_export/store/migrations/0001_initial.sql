-- The activation table is two tables: one row per event (its current state and last
-- outcome) and one row per attempt (append-only history). Times are POSIX seconds.

CREATE TABLE IF NOT EXISTS authentications (
    name         TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('access_token', 'channel_credentials')),
    api_url      TEXT NOT NULL,
    channel_id   TEXT,
    channel_key  TEXT NOT NULL,          -- what rate limits and pauses belong to
    credentials  BYTEA NOT NULL,         -- Fernet token; see vault.py
    bot_user_id  TEXT,
    bot_name     TEXT,
    created_at   DOUBLE PRECISION NOT NULL
);

CREATE TABLE IF NOT EXISTS channel_pauses (
    channel_key  TEXT PRIMARY KEY,
    reason       TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('quota', 'credentials')),
    since        DOUBLE PRECISION NOT NULL
);

CREATE TABLE IF NOT EXISTS activations (
    name                   TEXT PRIMARY KEY,
    description            TEXT NOT NULL DEFAULT '',
    authentication         TEXT NOT NULL REFERENCES authentications (name),
    recipient              TEXT NOT NULL,
    messages               TEXT NOT NULL,
    max_retries            INTEGER NOT NULL CHECK (max_retries >= 0),
    initial_retry_delay    DOUBLE PRECISION NOT NULL CHECK (initial_retry_delay >= 0),
    retry_delay_multiple   DOUBLE PRECISION NOT NULL CHECK (retry_delay_multiple >= 1),
    notification_disabled  BOOLEAN NOT NULL DEFAULT FALSE,
    paused_reason          TEXT,
    created_at             DOUBLE PRECISION NOT NULL,
    updated_at             DOUBLE PRECISION NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    id                   BIGSERIAL_OR_ROWID,
    activation           TEXT NOT NULL REFERENCES activations (name) ON DELETE CASCADE,
    event_id             TEXT NOT NULL,
    channel_key          TEXT NOT NULL,
    recipient            TEXT,
    body                 BYTEA,             -- the exact push request body, sent byte for byte
    retry_key            TEXT NOT NULL,     -- X-Line-Retry-Key, fixed when the event was accepted
    state                TEXT NOT NULL CHECK (state IN ('queued', 'retrying', 'paused', 'delivered', 'failed')),
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
    UNIQUE (activation, event_id)
);

-- Claims read only due, unfinished events; the partial index keeps finished history out of the way.
CREATE INDEX IF NOT EXISTS events_due ON events (next_attempt_at) WHERE state IN ('queued', 'retrying');
-- Pauses and resumes look up a channel's unfinished events only; delivered rows leave this index.
CREATE INDEX IF NOT EXISTS events_unfinished_by_channel ON events (channel_key)
    WHERE state IN ('queued', 'retrying', 'paused');
CREATE INDEX IF NOT EXISTS events_by_activation ON events (activation, id);

CREATE TABLE IF NOT EXISTS attempts (
    event            BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    number           INTEGER NOT NULL,
    started_at       DOUBLE PRECISION NOT NULL,
    duration_ms      DOUBLE PRECISION,
    status_code      INTEGER,
    error            TEXT,
    line_request_id  TEXT,
    PRIMARY KEY (event, number)
) /*WITHOUT_ROWID*/;  -- SQLite: the primary key is the table, one B-tree write per attempt

CREATE TABLE IF NOT EXISTS api_keys (
    name        TEXT PRIMARY KEY,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  DOUBLE PRECISION NOT NULL,
    revoked_at  DOUBLE PRECISION
);

-- The console at scale (review of issue 10's console).

-- An activation's counts by state (activation_counts) read this index alone instead of every row
-- of the activation, and a table page filtered by state (log_page_in_state) walks only that
-- state's events, newest first: a filter that matches nothing costs nothing. id is last so that
-- PostgreSQL can read it in id order too (SQLite keeps the rowid in every index anyway).
CREATE INDEX events_by_activation_state ON events (activation, state, id);

-- Console sessions live in the database, so that every `serve` on it (several `--no-worker` nodes
-- behind a load balancer, or one after a restart) knows them (web/console/sessions.py). The
-- cookie holds a random id; only its SHA-256 is kept, so these rows hold no usable cookie.
CREATE TABLE console_sessions (
    id_hash     TEXT NOT NULL PRIMARY KEY,
    api_key     TEXT NOT NULL,               -- the key's name (its role is read at every request)
    csrf        TEXT NOT NULL,               -- the session's CSRF token
    created_at  DOUBLE PRECISION NOT NULL,
    expires_at  DOUBLE PRECISION NOT NULL
) /*WITHOUT_ROWID*/;
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);

-- The Catalog flow's tested credentials between Continue and Done (web/console/drafts.py), so any
-- node may serve the next step: sealed with the vault, bound to the session that tested them (and
-- gone with it: logout, expiry), kept 15 minutes at most, deleted once used.
CREATE TABLE console_drafts (
    seq             BIGSERIAL_OR_ROWID,          -- the order a session's drafts were made in
    id              TEXT NOT NULL UNIQUE,        -- random; the only part in the page's address
    session_hash    TEXT NOT NULL REFERENCES console_sessions (id_hash) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    channel_id      TEXT,
    api_url         TEXT NOT NULL,
    bot             TEXT NOT NULL,               -- who LINE said they belong to (JSON; no secret)
    webhook_secret  BOOLEAN NOT NULL,            -- the Channel Secret Key is among them
    sealed          BYTEA NOT NULL,              -- the secrets, sealed with the vault
    expires_at      DOUBLE PRECISION NOT NULL
);
CREATE INDEX console_drafts_by_session ON console_drafts (session_hash, seq);
CREATE INDEX console_drafts_by_expiry ON console_drafts (expires_at);

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

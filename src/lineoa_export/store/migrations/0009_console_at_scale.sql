-- The console at scale (review of issue 10's console).

-- An activation's counts by state (activation_counts) read this index alone instead of every row
-- of the activation, and a table page filtered by state (log_page_in_state) walks only that
-- state's events, newest first: a filter that matches nothing costs nothing. id is last so that
-- PostgreSQL can read it in id order too (SQLite keeps the rowid in every index anyway).
CREATE INDEX events_by_activation_state ON events (activation, state, id);

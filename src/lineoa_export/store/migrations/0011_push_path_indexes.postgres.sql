-- Less for every push to update (issue 7, row (d)): each outcome moves its event out of every
-- partial index on unfinished events, and two of them had nothing left to serve.
-- events_due (due events of every channel) is covered by events_due_by_channel: claims go by
-- channel, and the scans with no channel (pending_summary, release_leases_of) read that
-- partial index whole. events_unfinished_by_channel (queued, retrying and paused by channel)
-- is covered for queued and retrying by events_due_by_channel; paused events, which channel
-- resumes read, get a small index of their own. Every query that read the dropped indexes
-- still reads an index (EXPLAIN with 200,000 events). SQLite's twin also rebuilds the table.
DROP INDEX events_due;
DROP INDEX events_unfinished_by_channel;
CREATE INDEX events_paused_by_channel ON events (channel_key) WHERE state = 'paused';

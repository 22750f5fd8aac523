-- What serve does about LINE by itself (issue 10, insight/background.py): work that several
-- processes on one database could each start is claimed first with a unique row; the process
-- whose insert went in does it, the others find it taken. Claims are pruned after a few days.
CREATE TABLE background_claims (
    claim       TEXT NOT NULL PRIMARY KEY,   -- e.g. reconcile:AUTH:2027-01-20:0, stats:CHANNEL:SLOT
    claimed_by  TEXT NOT NULL,               -- host:pid of the process
    claimed_at  DOUBLE PRECISION NOT NULL
) /*WITHOUT_ROWID*/;
CREATE INDEX background_claims_by_time ON background_claims (claimed_at);

-- Webhook event ids are kept for deduplication only as long as LINE may repeat them (30 days,
-- followers.py), then pruned by received time.
CREATE INDEX webhook_events_by_time ON webhook_events (received_at);

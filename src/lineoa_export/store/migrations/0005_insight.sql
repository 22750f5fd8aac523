-- Insight (issue 10): what LINE tells afterwards, kept beside what we sent.
-- Times are POSIX seconds; days and months are LINE's, in UTC+9 (see line_time.py).

-- The aggregation unit (customAggregationUnits) of every push of an activation; NULL: none.
-- Activations made before this have none: their pushes go on as they were.
ALTER TABLE activations ADD COLUMN aggregation_unit TEXT;
-- The unit an event's body carries, so a worker can check the month's budget without parsing it.
ALTER TABLE events ADD COLUMN aggregation_unit TEXT;

-- Whether a unit may be used on a channel in a month: decided once, before its first push
-- that month, from LINE's count of units used (1,000 a month; LINE drops the rest silently).
-- Never changes afterwards, so a retry sends the same bytes as the first attempt.
CREATE TABLE aggregation_units (
    channel_key  TEXT NOT NULL,
    month        TEXT NOT NULL,              -- YYYY-MM in UTC+9
    unit         TEXT NOT NULL,
    granted      INTEGER NOT NULL CHECK (granted IN (0, 1)),
    units_used   INTEGER,                    -- LINE's count when asked; NULL when LINE did not answer
    note         TEXT NOT NULL,
    checked_at   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (channel_key, month, unit)
) /*WITHOUT_ROWID*/;

-- LINE's statistics per unit, as LINE answered, with the time they were fetched.
CREATE TABLE unit_statistics (
    channel_key  TEXT NOT NULL,
    unit         TEXT NOT NULL,
    from_day     TEXT NOT NULL,              -- yyyyMMdd, UTC+9
    to_day       TEXT NOT NULL,
    figures      TEXT NOT NULL,              -- LINE's JSON answer
    fetched_at   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (channel_key, unit, from_day, to_day)
) /*WITHOUT_ROWID*/;

-- Requests made to LINE's statistics endpoint (60 an hour per channel, shared by every process).
CREATE TABLE insight_requests (
    channel_key   TEXT NOT NULL,
    requested_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX insight_requests_by_channel ON insight_requests (channel_key, requested_at);

-- LINE's count of pushes on a day next to ours: equal, LINE counted more, LINE counted fewer,
-- not ready yet, or too few for LINE to tell (under 20).
CREATE TABLE reconciliations (
    authentication  TEXT NOT NULL,
    day             TEXT NOT NULL,           -- YYYY-MM-DD, UTC+9
    channel_key     TEXT NOT NULL,
    verdict         TEXT NOT NULL
        CHECK (verdict IN ('equal', 'line_more', 'line_fewer', 'not_ready', 'unavailable')),
    line_status     TEXT NOT NULL,           -- LINE's status: ready, unready, unavailable_for_privacy, ...
    line_count      INTEGER,
    our_count       INTEGER NOT NULL,
    checked_at      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (authentication, day)
) /*WITHOUT_ROWID*/;

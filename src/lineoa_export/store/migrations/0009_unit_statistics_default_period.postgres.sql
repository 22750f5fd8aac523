-- The overview's engagement (issue 10): each unit's figures for the period `stats` shows by default
-- (insight/statistics.py: from the activation's first day, or 30 days back, to the day they were
-- fetched, in UTC+9), never those of a period asked for by hand (`stats --from --to`). The default
-- period's end moves every day, so the flag says which stored periods were the default when fetched;
-- the background prunes the rest (insight/background.py).
ALTER TABLE unit_statistics ADD COLUMN default_period BOOLEAN NOT NULL DEFAULT FALSE;

-- Figures kept before this: a period is a default one when it ends on the day (UTC+9) it was fetched
-- and starts on the later of the first day of an activation sending with the unit and 30 days earlier.
UPDATE unit_statistics s SET default_period = TRUE
WHERE s.to_day = to_char(to_timestamp(s.fetched_at + 32400) AT TIME ZONE 'UTC', 'YYYYMMDD')
  AND EXISTS (
    SELECT 1 FROM activations x JOIN authentications a ON a.name = x.authentication
    WHERE a.channel_key = s.channel_key AND x.aggregation_unit = s.unit
      AND s.from_day = GREATEST(
          to_char(to_timestamp(x.created_at + 32400) AT TIME ZONE 'UTC', 'YYYYMMDD'),
          to_char(to_date(s.to_day, 'YYYYMMDD') - 30, 'YYYYMMDD'))
  );

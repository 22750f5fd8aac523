-- The console's overview (issue 10): a channel's or an activation's last hour, read by time.

-- Pushes per minute, retry reasons and trigger-to-push latency read the last hour's attempts;
-- the primary key (event, number) cannot find them by time.
CREATE INDEX attempts_by_time ON attempts (started_at);
-- What finished on a channel in a window (delivered, failed, suppressed): the overview's last
-- hour, and a reconciliation's day of deliveries (delivered_on_channel_between).
CREATE INDEX events_finished_by_channel ON events (channel_key, finished_at) WHERE finished_at IS NOT NULL;

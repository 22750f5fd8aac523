-- Named queries. ":param" placeholders; database.py adapts them to the driver.
-- A paused channel or activation holds its events in state 'paused' (see states.py).

-- Schema version (store/migrations): which numbered migrations a database has had.

-- name: lock_schema
SELECT pg_advisory_xact_lock(8675309, hashtext(coalesce(current_schema(), '')))

-- name: tables_sqlite
SELECT name FROM sqlite_master WHERE type = 'table'

-- name: tables_postgres
SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()

-- name: schema_migrations_create
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  DOUBLE PRECISION NOT NULL,
    applied_by  TEXT NOT NULL
)

-- name: schema_migrations_all
SELECT version, name, applied_at, applied_by FROM schema_migrations ORDER BY version

-- name: schema_migration_insert
INSERT INTO schema_migrations (version, name, applied_at, applied_by)
VALUES (:version, :name, :applied_at, :applied_by)

-- name: auth_insert
INSERT INTO authentications (name, kind, api_url, channel_id, channel_key, credentials, bot_user_id, bot_name, created_at,
                             webhook_secret_set)
VALUES (:name, :kind, :api_url, :channel_id, :channel_key, :credentials, :bot_user_id, :bot_name, :created_at,
        :webhook_secret_set)
ON CONFLICT (name) DO NOTHING
RETURNING name

-- name: auth_get
SELECT a.*, p.reason AS paused_reason, p.kind AS paused_kind,
       (SELECT COUNT(*) FROM followers f WHERE f.channel_key = a.channel_key AND NOT f.following) AS blocked_users
FROM authentications a LEFT JOIN channel_pauses p ON p.channel_key = a.channel_key
WHERE a.name = :name

-- name: auth_list
SELECT a.*, p.reason AS paused_reason, p.kind AS paused_kind,
       (SELECT COUNT(*) FROM activations x WHERE x.authentication = a.name) AS activations,
       (SELECT COUNT(*) FROM followers f WHERE f.channel_key = a.channel_key AND NOT f.following) AS blocked_users
FROM authentications a LEFT JOIN channel_pauses p ON p.channel_key = a.channel_key
ORDER BY a.name

-- name: auth_rotate
UPDATE authentications SET credentials = :credentials, webhook_secret_set = :webhook_secret_set,
       bot_user_id = COALESCE(:bot_user_id, bot_user_id), bot_name = COALESCE(:bot_name, bot_name)
WHERE name = :name
RETURNING name

-- name: auth_delete
DELETE FROM authentications WHERE name = :name RETURNING name

-- name: auth_users
SELECT name FROM activations WHERE authentication = :name ORDER BY name

-- name: activation_insert
INSERT INTO activations (name, description, authentication, recipient, messages, max_retries,
                         initial_retry_delay, retry_delay_multiple, notification_disabled, aggregation_unit,
                         frequency_cap, over_cap, quiet_hours, time_zone, time_zone_attribute, in_quiet_hours,
                         created_at, updated_at)
VALUES (:name, :description, :authentication, :recipient, :messages, :max_retries,
        :initial_retry_delay, :retry_delay_multiple, :notification_disabled, :aggregation_unit,
        :frequency_cap, :over_cap, :quiet_hours, :time_zone, :time_zone_attribute, :in_quiet_hours, :now, :now)
ON CONFLICT (name) DO NOTHING
RETURNING name

-- name: activation_update
UPDATE activations SET description = :description, authentication = :authentication, recipient = :recipient,
       messages = :messages, max_retries = :max_retries, initial_retry_delay = :initial_retry_delay,
       retry_delay_multiple = :retry_delay_multiple, notification_disabled = :notification_disabled,
       aggregation_unit = :aggregation_unit, frequency_cap = :frequency_cap, over_cap = :over_cap,
       quiet_hours = :quiet_hours, time_zone = :time_zone, time_zone_attribute = :time_zone_attribute,
       in_quiet_hours = :in_quiet_hours, updated_at = :now
WHERE name = :name
RETURNING name

-- name: activation_get
SELECT x.*, a.channel_key, p.reason AS channel_paused_reason, p.kind AS channel_pause_kind,
       p.since AS channel_paused_since
FROM activations x
JOIN authentications a ON a.name = x.authentication
LEFT JOIN channel_pauses p ON p.channel_key = a.channel_key
WHERE x.name = :name

-- name: activation_list
SELECT x.*, a.channel_key, p.reason AS channel_paused_reason, p.kind AS channel_pause_kind,
       p.since AS channel_paused_since
FROM activations x
JOIN authentications a ON a.name = x.authentication
LEFT JOIN channel_pauses p ON p.channel_key = a.channel_key
ORDER BY x.name

-- name: activation_rechannel_events
UPDATE events SET channel_key = (
    SELECT a.channel_key FROM activations x JOIN authentications a ON a.name = x.authentication
    WHERE x.name = :name)
WHERE activation = :name AND state IN ('queued', 'retrying', 'paused', 'deferred')

-- name: activation_delete
DELETE FROM activations WHERE name = :name RETURNING name

-- name: activation_set_paused
UPDATE activations SET paused_reason = :reason, updated_at = :now WHERE name = :name RETURNING name

-- name: activation_counts
SELECT state, COUNT(*) AS n FROM events WHERE activation = :name GROUP BY state

-- name: event_insert
INSERT INTO events (activation, event_id, channel_key, recipient, body, retry_key, state, retries,
                    accepted_at, next_attempt_at, finished_at, error, aggregation_unit, time_zone)
VALUES (:activation, :event_id, :channel_key, :recipient, :body, :retry_key,
        CASE WHEN :state = 'queued' AND (
                  EXISTS (SELECT 1 FROM channel_pauses p WHERE p.channel_key = :channel_key AND p.kind <> 'breaker')
               OR EXISTS (SELECT 1 FROM activations x WHERE x.name = :activation AND x.paused_reason IS NOT NULL))
             THEN 'paused' ELSE :state END,
        0, :accepted_at, :next_attempt_at, :finished_at, :error, :aggregation_unit, :time_zone)
ON CONFLICT (activation, event_id) DO NOTHING
RETURNING id, state

-- name: claim_due
-- One statement leases a batch of one channel's due events (a lane); activation parameters come
-- from activation_routes. An event leased by a worker whose heartbeat stopped is due again
-- (a lease of a worker that never registered, e.g. one of 0.1.0, runs out with its lease).
UPDATE events SET leased_until = :until, leased_by = :worker
WHERE id IN (
    SELECT e.id FROM events e
    WHERE e.channel_key = :channel_key AND e.state IN ('queued', 'retrying') AND e.next_attempt_at <= :now
      AND (e.leased_until IS NULL OR e.leased_until <= :now
           OR e.leased_by IN (SELECT w.id FROM workers w WHERE w.heartbeat_at <= :alive_since AND w.id <> :worker))
    ORDER BY e.next_attempt_at
    LIMIT :limit
    /*FOR_UPDATE*/
)
RETURNING id, activation, channel_key, body, retry_key, attempts, retries, first_attempt_at, accepted_at,
          aggregation_unit, recipient, counted_at, time_zone,
          -- the audience gate (delivery/audience_gate.py): whether anyone blocked this channel at all
          -- (worked out once per claim). Who did is looked up after the claim, and only then: SQLite
          -- cannot use an index for a subquery that names the updated row, and would read every
          -- blocked follower of the channel for every event claimed.
          (SELECT 1 FROM followers f /*INDEXED BY followers_blocked*/
           WHERE f.channel_key = :channel_key AND NOT f.following LIMIT 1) AS channel_blocked

-- name: activation_routes
SELECT name, authentication, max_retries, initial_retry_delay, retry_delay_multiple,
       frequency_cap, over_cap, quiet_hours, time_zone, time_zone_attribute, in_quiet_hours
FROM activations

-- name: release_lease
UPDATE events SET leased_until = NULL, leased_by = NULL WHERE id = :id AND leased_by = :worker

-- name: release_leases_of
UPDATE events SET leased_until = NULL, leased_by = NULL WHERE leased_by = :worker AND state IN ('queued', 'retrying')

-- name: record_outcome
-- An attempt's outcome (record_settled: an event decided without sending). A waiting event whose
-- channel or activation was paused meanwhile waits as 'paused'.
UPDATE events SET
    state = CASE WHEN :state IN ('queued', 'retrying') AND (
                      EXISTS (SELECT 1 FROM channel_pauses p
                              WHERE p.channel_key = events.channel_key AND p.kind <> 'breaker')
                   OR EXISTS (SELECT 1 FROM activations x WHERE x.name = events.activation AND x.paused_reason IS NOT NULL))
                 THEN 'paused' ELSE :state END,
    attempts = :attempt,
    retries = :retries,
    first_attempt_at = COALESCE(first_attempt_at, :started_at),
    next_attempt_at = :next_attempt_at,
    finished_at = :finished_at,
    leased_until = NULL,
    leased_by = NULL,
    status_code = :status_code,
    error = :error,
    line_request_id = COALESCE(:line_request_id, line_request_id),
    accepted_request_id = COALESCE(:accepted_request_id, accepted_request_id),
    sent_message_ids = COALESCE(:sent_message_ids, sent_message_ids)
WHERE id = :id AND leased_by = :worker

-- name: record_settled
-- An event settled without sending keeps the status code and error of its last attempt.
UPDATE events SET
    state = CASE WHEN :state IN ('queued', 'retrying') AND (
                      EXISTS (SELECT 1 FROM channel_pauses p
                              WHERE p.channel_key = events.channel_key AND p.kind <> 'breaker')
                   OR EXISTS (SELECT 1 FROM activations x WHERE x.name = events.activation AND x.paused_reason IS NOT NULL))
                 THEN 'paused' ELSE :state END,
    attempts = :attempt,
    retries = :retries,
    next_attempt_at = :next_attempt_at,
    finished_at = :finished_at,
    leased_until = NULL,
    leased_by = NULL,
    error = COALESCE(:error, error)
WHERE id = :id AND leased_by = :worker

-- name: record_attempt
-- Only while this worker still holds the lease: a worker whose lease ran out lost the event.
INSERT INTO attempts (event, number, started_at, duration_ms, status_code, error, line_request_id)
SELECT :id, :attempt, :started_at, :duration_ms, :status_code, :error, :line_request_id
WHERE EXISTS (SELECT 1 FROM events WHERE id = :id AND leased_by = :worker)
ON CONFLICT (event, number) DO NOTHING

-- name: pending_summary
-- next_due: when the earliest unfinished event becomes claimable (its due time, or its lease's end)
SELECT COUNT(*) AS pending,
       MIN(CASE WHEN leased_until IS NULL OR leased_until <= :now THEN next_attempt_at
                WHEN leased_until > next_attempt_at THEN leased_until ELSE next_attempt_at END) AS next_due
FROM events WHERE state IN ('queued', 'retrying')

-- name: channel_pause
INSERT INTO channel_pauses (channel_key, reason, kind, since) VALUES (:channel_key, :reason, :kind, :now)
ON CONFLICT (channel_key) DO UPDATE SET reason = excluded.reason, kind = excluded.kind, probe_at = NULL, trips = 0

-- name: channel_hold_events
UPDATE events SET state = 'paused' WHERE channel_key = :channel_key AND state IN ('queued', 'retrying')

-- name: channel_unpause
DELETE FROM channel_pauses WHERE channel_key = :channel_key

-- name: channel_pauses_by_kind
SELECT p.channel_key, p.reason, p.since, MIN(a.name) AS authentication
FROM channel_pauses p JOIN authentications a ON a.channel_key = p.channel_key
WHERE p.kind = :kind GROUP BY p.channel_key, p.reason, p.since

-- name: channel_release_events
UPDATE events SET
    state = CASE WHEN retries > 0 THEN 'retrying' ELSE 'queued' END,
    next_attempt_at = CASE WHEN next_attempt_at > :now THEN next_attempt_at ELSE :now END
WHERE channel_key = :channel_key AND state = 'paused'
  AND activation IN (SELECT name FROM activations WHERE paused_reason IS NULL)

-- name: activation_hold_events
UPDATE events SET state = 'paused' WHERE activation = :name AND state IN ('queued', 'retrying')

-- name: activation_release_events
UPDATE events SET
    state = CASE WHEN retries > 0 THEN 'retrying' ELSE 'queued' END,
    next_attempt_at = CASE WHEN next_attempt_at > :now THEN next_attempt_at ELSE :now END
WHERE activation = :name AND state = 'paused'
  AND NOT EXISTS (SELECT 1 FROM channel_pauses p WHERE p.channel_key = events.channel_key AND p.kind <> 'breaker')

-- name: replay_failed
UPDATE events SET state = 'queued', retries = 0, next_attempt_at = :now, finished_at = NULL
WHERE activation = :name AND state = 'failed' AND body IS NOT NULL
  AND (first_attempt_at IS NULL OR first_attempt_at > :key_window_start)
  AND (CAST(:event_id AS TEXT) IS NULL OR event_id = :event_id)
RETURNING event_id

-- name: replay_failed_batch
UPDATE events SET state = 'queued', retries = 0, next_attempt_at = :now, finished_at = NULL
WHERE id IN (
  SELECT id FROM events
  WHERE activation = :name AND state = 'failed' AND body IS NOT NULL
    AND (first_attempt_at IS NULL OR first_attempt_at > :key_window_start)
    AND id > :after_id
  ORDER BY id
  LIMIT :limit
)
RETURNING id, event_id

-- name: log_page
SELECT e.id, e.event_id, e.recipient, e.state, e.status_code, e.error, e.attempts, e.retry_key,
       e.line_request_id, e.accepted_request_id, e.sent_message_ids, e.accepted_at, e.next_attempt_at,
       e.finished_at
FROM events e
WHERE e.activation = :activation
  AND (CAST(:state AS TEXT) IS NULL OR e.state = :state)
  AND (CAST(:delivered AS INTEGER) IS NULL OR (CASE WHEN e.state = 'delivered' THEN 1 ELSE 0 END) = :delivered)
  AND (CAST(:status_code AS INTEGER) IS NULL OR e.status_code = :status_code)
  AND (CAST(:since AS DOUBLE PRECISION) IS NULL OR e.accepted_at >= :since)
  AND (CAST(:until AS DOUBLE PRECISION) IS NULL OR e.accepted_at < :until)
  AND (CAST(:before_id AS BIGINT) IS NULL OR e.id < :before_id)
ORDER BY e.id DESC
LIMIT :limit

-- name: log_page_in_state
-- log_page for one state (the State filter, or Delivered: yes): the state is not optional here, so
-- the page is read from events_by_activation_state, newest first, however few rows match.
SELECT e.id, e.event_id, e.recipient, e.state, e.status_code, e.error, e.attempts, e.retry_key,
       e.line_request_id, e.accepted_request_id, e.sent_message_ids, e.accepted_at, e.next_attempt_at,
       e.finished_at
FROM events e
WHERE e.activation = :activation
  AND e.state = :state
  AND (CAST(:delivered AS INTEGER) IS NULL OR (CASE WHEN e.state = 'delivered' THEN 1 ELSE 0 END) = :delivered)
  AND (CAST(:status_code AS INTEGER) IS NULL OR e.status_code = :status_code)
  AND (CAST(:since AS DOUBLE PRECISION) IS NULL OR e.accepted_at >= :since)
  AND (CAST(:until AS DOUBLE PRECISION) IS NULL OR e.accepted_at < :until)
  AND (CAST(:before_id AS BIGINT) IS NULL OR e.id < :before_id)
ORDER BY e.id DESC
LIMIT :limit

-- name: log_event
SELECT e.id, e.event_id, e.recipient, e.state, e.status_code, e.error, e.attempts, e.retry_key,
       e.line_request_id, e.accepted_request_id, e.sent_message_ids, e.accepted_at, e.next_attempt_at,
       e.finished_at, e.body, e.channel_key, e.aggregation_unit, e.first_attempt_at
FROM events e WHERE e.activation = :activation AND e.event_id = :event_id

-- name: log_attempts
SELECT a.event, a.number, a.started_at, a.duration_ms, a.status_code, a.error, a.line_request_id
FROM attempts a JOIN events e ON e.id = a.event
WHERE e.activation = :activation AND a.event BETWEEN :lo AND :hi
ORDER BY a.event, a.number

-- name: apikey_insert
INSERT INTO api_keys (name, key_hash, created_at, role) VALUES (:name, :key_hash, :now, :role)
ON CONFLICT (name) DO NOTHING
RETURNING name

-- name: apikey_list
SELECT name, created_at, revoked_at, role FROM api_keys ORDER BY name

-- name: apikey_revoke
UPDATE api_keys SET revoked_at = :now WHERE name = :name AND revoked_at IS NULL RETURNING name

-- name: apikey_by_hash
SELECT name, key_hash, created_at, role FROM api_keys WHERE key_hash = :key_hash AND revoked_at IS NULL

-- name: console_session_insert
INSERT INTO console_sessions (id_hash, api_key, csrf, created_at, expires_at)
VALUES (:id_hash, :api_key, :csrf, :created_at, :expires_at)

-- name: console_session_get
SELECT api_key, csrf, created_at, expires_at FROM console_sessions WHERE id_hash = :id_hash AND expires_at > :now

-- name: console_session_delete
DELETE FROM console_sessions WHERE id_hash = :id_hash

-- name: console_sessions_expire
DELETE FROM console_sessions WHERE expires_at <= :now

-- name: console_draft_insert
-- Nothing when the session has ended meanwhile (logged out in another tab while LINE was asked).
INSERT INTO console_drafts (id, session_hash, kind, channel_id, api_url, bot, webhook_secret, sealed, expires_at)
SELECT :id, :session_hash, :kind, :channel_id, :api_url, :bot, :webhook_secret, :sealed, :expires_at
WHERE EXISTS (SELECT 1 FROM console_sessions s WHERE s.id_hash = :session_hash)
RETURNING id

-- name: console_draft_get
SELECT id, kind, channel_id, api_url, bot, webhook_secret, sealed, expires_at FROM console_drafts
WHERE id = :id AND session_hash = :session_hash AND expires_at > :now

-- name: console_draft_delete
DELETE FROM console_drafts WHERE id = :id AND session_hash = :session_hash

-- name: console_drafts_end
DELETE FROM console_drafts WHERE session_hash = :session_hash

-- name: console_drafts_keep_newest
-- A session keeps its newest few drafts (a few tabs at once); an older one gives way.
DELETE FROM console_drafts
WHERE session_hash = :session_hash
  AND seq NOT IN (SELECT d.seq FROM console_drafts d WHERE d.session_hash = :session_hash
                  ORDER BY d.seq DESC LIMIT :keep)

-- name: console_drafts_expire
DELETE FROM console_drafts WHERE expires_at <= :now

-- name: console_drafts_count
SELECT COUNT(*) AS n FROM console_drafts WHERE expires_at > :now

-- name: queue_depth
SELECT x.name AS activation, e.state, COUNT(*) AS n
FROM events e JOIN activations x ON x.name = e.activation
WHERE e.state IN ('queued', 'retrying', 'paused', 'deferred')
GROUP BY x.name, e.state

-- name: channel_pauses_all
SELECT channel_key, reason, kind, since, probe_at, trips FROM channel_pauses

-- name: activations_paused
SELECT name FROM activations WHERE paused_reason IS NOT NULL

-- name: breaker_trip
INSERT INTO channel_pauses (channel_key, reason, kind, since, probe_at, trips)
VALUES (:channel_key, :reason, 'breaker', :now, :probe_at, :trips)
ON CONFLICT (channel_key) DO UPDATE SET reason = excluded.reason, probe_at = excluded.probe_at, trips = excluded.trips
WHERE channel_pauses.kind = 'breaker'

-- name: breaker_hold_events
-- A tripped channel's due events wait for the probe (state retrying, no retry spent).
UPDATE events SET state = 'retrying', next_attempt_at = :probe_at
WHERE channel_key = :channel_key AND state IN ('queued', 'retrying') AND next_attempt_at < :probe_at

-- name: breaker_take_probe
UPDATE channel_pauses SET probe_at = :until
WHERE channel_key = :channel_key AND kind = 'breaker' AND probe_at <= :now
RETURNING channel_key

-- name: breaker_close
DELETE FROM channel_pauses WHERE channel_key = :channel_key AND kind = 'breaker' RETURNING channel_key

-- name: channel_keys
SELECT DISTINCT channel_key FROM authentications

-- name: auth_versions
SELECT name, channel_key, api_url, created_at, credentials FROM authentications

-- name: worker_register
INSERT INTO workers (id, host, pid, started_at, heartbeat_at) VALUES (:id, :host, :pid, :now, :now)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at

-- name: worker_heartbeat
UPDATE workers SET heartbeat_at = :now WHERE id = :id RETURNING id

-- name: workers_alive
SELECT COUNT(*) AS n FROM workers WHERE heartbeat_at > :alive_since

-- name: worker_forget
DELETE FROM workers WHERE id = :id OR heartbeat_at < :forget_before

-- Webhooks (issue 9): follow / unfollow, each webhookEventId once, the newest timestamp wins.

-- name: webhook_event_seen
INSERT INTO webhook_events (channel_key, webhook_event_id, received_at)
VALUES (:channel_key, :webhook_event_id, :now)
ON CONFLICT (channel_key, webhook_event_id) DO NOTHING
RETURNING webhook_event_id

-- name: webhook_events_prune
-- At most :batch of the oldest ids at a time (followers.forget_old_event_ids), by the received_at index:
-- each batch is a short transaction of its own, so SQLite's one writer is not held for days of ids.
DELETE FROM webhook_events WHERE (channel_key, webhook_event_id) IN (
    SELECT channel_key, webhook_event_id FROM webhook_events WHERE received_at < :before
    ORDER BY received_at LIMIT :batch
)

-- name: follower_upsert
INSERT INTO followers (channel_key, user_id, following, changed_at_ms)
VALUES (:channel_key, :user_id, :following, :changed_at_ms)
ON CONFLICT (channel_key, user_id) DO UPDATE SET following = excluded.following, changed_at_ms = excluded.changed_at_ms
WHERE excluded.changed_at_ms > followers.changed_at_ms
RETURNING user_id

-- name: follower_get
SELECT user_id, following, changed_at_ms FROM followers WHERE channel_key = :channel_key AND user_id = :user_id

-- name: followers_blocked_count
SELECT COUNT(*) AS n FROM followers WHERE channel_key = :channel_key AND NOT following

-- name: followers_blocked_among_sqlite
-- Which of these recipients (a JSON array) blocked the channel, and when: one primary-key look-up each.
SELECT user_id, changed_at_ms FROM followers
WHERE channel_key = :channel_key AND user_id IN (SELECT value FROM json_each(:user_ids)) AND NOT following

-- name: followers_blocked_among_postgres
SELECT user_id, changed_at_ms FROM followers
WHERE channel_key = :channel_key AND user_id = ANY(:user_ids) AND NOT following

-- name: aggregation_unit_get
SELECT channel_key, month, unit, granted, units_used, note, checked_at FROM aggregation_units
WHERE channel_key = :channel_key AND month = :month AND unit = :unit

-- name: aggregation_unit_insert
-- Inside decide()'s transaction, under its lock; see delivery/units.py.
INSERT INTO aggregation_units (channel_key, month, unit, granted, units_used, note, checked_at)
VALUES (:channel_key, :month, :unit, :granted, :units_used, :note, :checked_at)
ON CONFLICT (channel_key, month, unit) DO NOTHING

-- name: aggregation_units_lock
-- PostgreSQL only: one decision at a time per channel and month (see delivery/units.py decide()).
SELECT pg_advisory_xact_lock(8675311, hashtext(CAST(:channel_key AS TEXT) || ' ' || CAST(:month AS TEXT)))

-- name: aggregation_units_granted
SELECT unit FROM aggregation_units WHERE channel_key = :channel_key AND month = :month AND granted = 1

-- name: aggregation_units_withheld
-- Activations whose pushes go without their unit this month (LINE's 1,000 were used up).
SELECT x.name AS activation, u.unit, u.channel_key FROM aggregation_units u
JOIN authentications a ON a.channel_key = u.channel_key
JOIN activations x ON x.authentication = a.name AND x.aggregation_unit = u.unit
WHERE u.granted = 0 AND u.month = :month
ORDER BY x.name

-- The audience gate (delivery/audience_gate.py): blocked users, quiet hours, frequency caps.

-- name: gate_hold
UPDATE events SET state = :state, next_attempt_at = :next_attempt_at, finished_at = :finished_at, error = :error,
       leased_until = NULL, leased_by = NULL
WHERE id = :id

-- name: cap_lock
SELECT pg_advisory_xact_lock(8675310, hashtext(:activation || ' ' || :recipient))

-- name: cap_counted
SELECT counted_at FROM events
WHERE activation = :activation AND recipient = :recipient AND counted_at > :since
  AND state IN ('queued', 'retrying', 'paused', 'delivered')

-- name: cap_count
UPDATE events SET counted_at = :now WHERE id = :id

-- name: deferred_release
UPDATE events SET
    state = CASE WHEN EXISTS (SELECT 1 FROM channel_pauses p WHERE p.channel_key = events.channel_key AND p.kind <> 'breaker')
                   OR EXISTS (SELECT 1 FROM activations x WHERE x.name = events.activation AND x.paused_reason IS NOT NULL)
                 THEN 'paused' ELSE 'queued' END,
    error = NULL
WHERE state = 'deferred' AND next_attempt_at <= :now
RETURNING id

-- Statistics per unit (issue 10), kept with the time they were fetched; see insight/statistics.py.

-- name: unit_statistics_get
SELECT figures, fetched_at FROM unit_statistics
WHERE channel_key = :channel_key AND unit = :unit AND from_day = :from_day AND to_day = :to_day

-- name: unit_statistics_put
-- A period once the default stays one: fetched again by hand later, it is still what the overview may show.
INSERT INTO unit_statistics (channel_key, unit, from_day, to_day, figures, fetched_at, default_period)
VALUES (:channel_key, :unit, :from_day, :to_day, :figures, :fetched_at, :default_period)
ON CONFLICT (channel_key, unit, from_day, to_day) DO UPDATE SET figures = excluded.figures,
    fetched_at = excluded.fetched_at, default_period = unit_statistics.default_period OR excluded.default_period

-- name: unit_statistics_prune
-- Figures no view needs any more (insight/background.py): fetched before :before (a day ago; `stats`
-- shows them with their age while LINE's hourly budget is spent) and not their unit's latest default period (what the overview shows, and `stats` by
-- default while it is today's).
DELETE FROM unit_statistics
WHERE fetched_at < :before
  AND NOT (default_period AND to_day = (
      SELECT MAX(s.to_day) FROM unit_statistics s
      WHERE s.channel_key = unit_statistics.channel_key AND s.unit = unit_statistics.unit AND s.default_period
  ))

-- name: insight_requests_lock
-- PostgreSQL only: one check-and-count at a time per channel (see insight/statistics.py take_request()).
SELECT pg_advisory_xact_lock(8675312, hashtext(CAST(:channel_key AS TEXT)))

-- name: insight_requests_prune
DELETE FROM insight_requests WHERE channel_key = :channel_key AND requested_at <= :before

-- name: insight_requests_since
SELECT COUNT(*) AS n, MIN(requested_at) AS oldest FROM insight_requests
WHERE channel_key = :channel_key AND requested_at > :since

-- name: insight_request_add
INSERT INTO insight_requests (channel_key, requested_at) VALUES (:channel_key, :now)

-- What serve does about LINE by itself (insight/background.py).

-- name: units_recently_used
-- Activations with a unit whose newest event came in since :since (by the activation's index).
SELECT x.name AS activation, x.aggregation_unit AS unit, x.created_at, a.channel_key FROM activations x
JOIN authentications a ON a.name = x.authentication
WHERE x.aggregation_unit IS NOT NULL
  AND (SELECT e.accepted_at FROM events e WHERE e.activation = x.name ORDER BY e.id DESC LIMIT 1) >= :since
ORDER BY a.channel_key, x.name

-- name: background_claim
-- The process whose row goes in does the work; the others get no row back.
INSERT INTO background_claims (claim, claimed_by, claimed_at) VALUES (:claim, :claimed_by, :now)
ON CONFLICT (claim) DO NOTHING
RETURNING claim

-- name: background_claims_prune
DELETE FROM background_claims WHERE claimed_at < :before

-- Reconciliation (issue 10): LINE's count of a day's pushes next to ours; see insight/reconcile.py.

-- name: delivered_on_channel_between
SELECT COUNT(*) AS n FROM events
WHERE channel_key = :channel_key AND state = 'delivered' AND finished_at >= :start AND finished_at < :end

-- name: reconciliation_put
INSERT INTO reconciliations (authentication, day, channel_key, verdict, line_status, line_count, our_count,
                             checked_at)
VALUES (:authentication, :day, :channel_key, :verdict, :line_status, :line_count, :our_count, :checked_at)
ON CONFLICT (authentication, day) DO UPDATE SET channel_key = excluded.channel_key, verdict = excluded.verdict,
    line_status = excluded.line_status, line_count = excluded.line_count, our_count = excluded.our_count,
    checked_at = excluded.checked_at

-- name: reconciliations_latest
SELECT r.* FROM reconciliations r
WHERE r.day = (SELECT MAX(q.day) FROM reconciliations q WHERE q.authentication = r.authentication)
ORDER BY r.authentication

-- name: reconciliation_get
SELECT * FROM reconciliations WHERE authentication = :authentication AND day = :day

-- name: reconciliations_of
SELECT * FROM reconciliations WHERE authentication = :authentication ORDER BY day DESC LIMIT :limit

-- Webhook forwarding (issue 9): where verified requests are re-sent, and the tries that failed.

-- name: auth_set_forward
UPDATE authentications SET forward_webhook = :forward_webhook WHERE name = :name RETURNING name

-- name: forward_failure_insert
INSERT INTO webhook_forward_failures (authentication, failed_at, attempts, error)
VALUES (:authentication, :failed_at, :attempts, :error)

-- name: forward_failures_summary
SELECT COUNT(*) AS n, MAX(failed_at) AS last_at,
       (SELECT f.error FROM webhook_forward_failures f WHERE f.authentication = :authentication
        ORDER BY f.id DESC LIMIT 1) AS last_error
FROM webhook_forward_failures WHERE authentication = :authentication

-- The overview (issue 10; overview.py): a scope's last hour, its queue and lag. A scope is a channel
-- (no activation given) or one activation on its channel; every query filters both ways alike, so the
-- figures of one page agree (an activation's events finished on a channel it has since left are not
-- counted). An attempt delivered when LINE accepted it (2xx, or 409 for a key it had accepted: the
-- event's last attempt, and it is delivered); it failed when it is the last attempt of a failed event;
-- else it was retried.

-- name: overview_pushes_per_minute
-- Minutes are counted from the window's start and floored alike on both stores: CAST truncates on SQLite and
-- rounds on PostgreSQL, so a cast that landed above the value is taken one down.
SELECT minute, SUM(CASE WHEN outcome = 'delivered' THEN 1 ELSE 0 END) AS delivered,
       SUM(CASE WHEN outcome = 'retried' THEN 1 ELSE 0 END) AS retried,
       SUM(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END) AS failed,
       SUM(CASE WHEN outcome = 'delivered' THEN latency ELSE 0 END) AS latency_sum,
       MAX(CASE WHEN outcome = 'delivered' THEN latency END) AS latency_max
FROM (
    SELECT m - CASE WHEN m > x THEN 1 ELSE 0 END AS minute, outcome, latency
    FROM (
        SELECT (a.started_at - :since) / 60.0 AS x, CAST((a.started_at - :since) / 60.0 AS INTEGER) AS m,
               a.started_at - e.accepted_at AS latency,
               CASE WHEN COALESCE(a.status_code, 0) BETWEEN 200 AND 299
                      OR (COALESCE(a.status_code, 0) = 409 AND a.number = e.attempts AND e.state = 'delivered')
                    THEN 'delivered'
                    WHEN a.number = e.attempts AND e.state = 'failed' THEN 'failed'
                    ELSE 'retried' END AS outcome
        FROM attempts a JOIN events e ON e.id = a.event
        WHERE a.started_at >= :since AND a.started_at < :until AND e.channel_key = :channel_key
          AND (CAST(:activation AS TEXT) IS NULL OR e.activation = :activation)
    ) t
) u
GROUP BY minute
ORDER BY minute

-- name: overview_retry_reasons
-- Why the attempts that did not deliver did not: LINE's status code, or no answer (the texts of
-- delivery/line_client.py's NoAnswer: "timeout: ...", "connect timeout: ...", "connection error: ...").
SELECT reason, COUNT(*) AS n FROM (
    SELECT CASE WHEN a.status_code IS NOT NULL THEN CAST(a.status_code AS TEXT)
                WHEN a.error LIKE 'timeout%' THEN 'timeout'
                WHEN a.error LIKE 'connect timeout%' OR a.error LIKE 'connection error%' THEN 'connect error'
                ELSE 'other' END AS reason
    FROM attempts a JOIN events e ON e.id = a.event
    WHERE a.started_at >= :since AND a.started_at < :until AND e.channel_key = :channel_key
      AND (CAST(:activation AS TEXT) IS NULL OR e.activation = :activation)
      AND NOT (COALESCE(a.status_code, 0) BETWEEN 200 AND 299)
      AND NOT (COALESCE(a.status_code, 0) = 409 AND a.number = e.attempts AND e.state = 'delivered')
) r
GROUP BY reason
ORDER BY n DESC, reason

-- name: overview_finished
-- Events that ended in the window (delivered, failed, suppressed), by state.
SELECT e.state, COUNT(*) AS n FROM events e
WHERE e.channel_key = :channel_key AND e.finished_at >= :since AND e.finished_at < :until
  AND (CAST(:activation AS TEXT) IS NULL OR e.activation = :activation)
GROUP BY e.state

-- name: overview_queue
-- Events waiting, by state, and the earliest due time of each (the lag: how long the oldest due
-- event has waited). Three parts so that each reads a partial index (events_due_by_channel,
-- events_paused_by_channel, events_deferred) rather than every event.
SELECT e.state, COUNT(*) AS n, MIN(e.next_attempt_at) AS first_due FROM events e
WHERE e.channel_key = :channel_key AND e.state IN ('queued', 'retrying')
  AND (CAST(:activation AS TEXT) IS NULL OR e.activation = :activation)
GROUP BY e.state
UNION ALL
SELECT e.state, COUNT(*) AS n, MIN(e.next_attempt_at) AS first_due FROM events e
WHERE e.channel_key = :channel_key AND e.state = 'paused'
  AND (CAST(:activation AS TEXT) IS NULL OR e.activation = :activation)
GROUP BY e.state
UNION ALL
SELECT e.state, COUNT(*) AS n, MIN(e.next_attempt_at) AS first_due FROM events e
WHERE e.state = 'deferred' AND e.channel_key = :channel_key
  AND (CAST(:activation AS TEXT) IS NULL OR e.activation = :activation)
GROUP BY e.state

-- name: overview_unit_statistics
-- LINE's stored figures for each of the channel's units (or the one unit): its latest default period, the
-- one `stats` shows by default (never a period asked for by hand), the newest fetch of it. One row a unit.
SELECT unit, from_day, to_day, figures, fetched_at FROM (
    SELECT unit, from_day, to_day, figures, fetched_at,
           ROW_NUMBER() OVER (PARTITION BY unit ORDER BY to_day DESC, fetched_at DESC, from_day DESC) AS n
    FROM unit_statistics
    WHERE channel_key = :channel_key AND default_period AND (CAST(:unit AS TEXT) IS NULL OR unit = :unit)
) latest
WHERE n = 1
ORDER BY unit

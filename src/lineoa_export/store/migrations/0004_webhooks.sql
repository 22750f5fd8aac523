-- Webhooks (issue 9): LINE's follow / unfollow events, kept per channel, each processed once.

-- Whether the authentication holds the channel secret that signs the channel's webhooks (the
-- secret itself is sealed with the credentials; this says only that it is there). A channel
-- made from an ID and secret has it already.
ALTER TABLE authentications ADD COLUMN webhook_secret_set BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE authentications SET webhook_secret_set = TRUE WHERE kind = 'channel_credentials';

-- Every follow / unfollow webhookEventId seen, so a redelivered or duplicated event counts once.
CREATE TABLE webhook_events (
    channel_key       TEXT NOT NULL,
    webhook_event_id  TEXT NOT NULL,
    received_at       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (channel_key, webhook_event_id)
) /*WITHOUT_ROWID*/;

-- A user's follow state on a channel, decided by the newest event timestamp (ms) seen, not by
-- the order events arrived in.
CREATE TABLE followers (
    channel_key    TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    following      BOOLEAN NOT NULL,
    changed_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (channel_key, user_id)
) /*WITHOUT_ROWID*/;
CREATE INDEX followers_blocked ON followers (channel_key) WHERE NOT following;

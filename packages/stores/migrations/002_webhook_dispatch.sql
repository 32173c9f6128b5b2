-- 002_webhook_dispatch: what the webhook dispatcher needs on top of 001's webhook_outbox
-- (packages/router/src/webhooks, docs/webhooks.md).

-- Ordering stream of a row: rows with the same (endpoint, ordering_key) are delivered one at a time, oldest
-- id first (only the oldest pending row of a stream is claimable). NULL: no ordering (inbound messages).
ALTER TABLE webhook_outbox ADD COLUMN ordering_key text;
-- Claim lease: the dispatcher that claimed a row (a random token per claim) and until when. A row whose
-- lease lapsed is claimable again (its router died); results are recorded only under the same token.
ALTER TABLE webhook_outbox ADD COLUMN locked_by text;
ALTER TABLE webhook_outbox ADD COLUMN locked_until timestamptz;
-- The last attempt: when, and the HTTP status (NULL: no response, see last_error).
ALTER TABLE webhook_outbox ADD COLUMN last_attempt_at timestamptz;
ALTER TABLE webhook_outbox ADD COLUMN last_status integer;
-- Set by an operator's replay: the retry window (WEBHOOK_MAX_AGE_MS) then counts from here, not created_at.
ALTER TABLE webhook_outbox ADD COLUMN replayed_at timestamptz;

-- The head of each ordered stream: NOT EXISTS (older pending row with the same endpoint and ordering_key).
CREATE INDEX webhook_outbox_stream_idx ON webhook_outbox (endpoint, ordering_key, id)
  WHERE status = 'pending' AND ordering_key IS NOT NULL;
-- Admin listing (newest first per status), stats per status and the oldest pending row.
CREATE INDEX webhook_outbox_status_id_idx ON webhook_outbox (status, id);
-- Retention sweep of delivered rows.
CREATE INDEX webhook_outbox_delivered_idx ON webhook_outbox (delivered_at) WHERE status = 'delivered';

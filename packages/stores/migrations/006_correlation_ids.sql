-- 006_correlation_ids: the id of the API request that caused an event (x-request-id), carried to the
-- webhook delivery as its `x-request-id` header (docs/webhooks.md, "Correlation ids").

-- Set by the writer of the event; NULL for events no request caused (inbound messages, reconnects).
ALTER TABLE webhook_outbox ADD COLUMN request_id text;
-- The request that sent a message: its later receipts (delivered, read, played) carry it.
ALTER TABLE messages ADD COLUMN request_id text;

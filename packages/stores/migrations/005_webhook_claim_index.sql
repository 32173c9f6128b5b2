-- 005_webhook_claim_index: the dispatcher's claim (packages/router/src/webhooks/dispatcher.ts) reads
--   WHERE status = 'pending' AND next_attempt_at <= now() ... ORDER BY next_attempt_at, id LIMIT n
-- 001's webhook_outbox_due_idx (status, next_attempt_at) lacks id and holds every delivered and dead row too,
-- so PostgreSQL sequentially scanned the whole table and sorted every due row on each claim (cost grew with the
-- table, dead tuples included). This partial index holds only pending rows in the claim's order: the claim walks
-- it and stops after n claimable rows. It also serves the recovered-origin pull-forward (pending, by time).
CREATE INDEX webhook_outbox_claim_idx ON webhook_outbox (next_attempt_at, id) WHERE status = 'pending';
-- Superseded by the above: every query on next_attempt_at is restricted to pending rows.
DROP INDEX webhook_outbox_due_idx;

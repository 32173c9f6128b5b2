-- 001_initial: the tables the gateway needs now and soon. Runs on PostgreSQL (15+) and PGlite alike:
-- only core types (text, integer, bigint/bigserial, boolean, jsonb, timestamptz), no extensions.
-- Timestamps are timestamptz (UTC instants). No foreign keys: events of a deleted session must still be
-- delivered from the outbox, and messages may arrive for a session row written later.

-- One row per session the gateway knows (the backend's session card id).
CREATE TABLE sessions (
  id          text PRIMARY KEY,
  host_id     text,
  shard       integer,
  status      text        NOT NULL DEFAULT 'starting',
  webhook_url text,
  metadata    jsonb       NOT NULL DEFAULT '{}'::jsonb,
  me          jsonb,                                   -- {phone, jid, lid, name} once paired
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_host_idx ON sessions (host_id, shard);

-- Sent and received messages; the latest status is kept on the row, its history in message_status_events.
CREATE TABLE messages (
  session_id  text        NOT NULL,
  id          text        NOT NULL,                    -- WhatsApp message id
  chat_jid    text        NOT NULL,
  from_me     boolean     NOT NULL,
  sender_jid  text,                                    -- author in groups
  type        text        NOT NULL,                    -- text, image, video, audio, document, ...
  status      text        NOT NULL,                    -- pending, sent, delivered, read, played, failed, received
  content     jsonb       NOT NULL DEFAULT '{}'::jsonb,
  quoted_id   text,
  sent_at     timestamptz NOT NULL,                    -- WhatsApp's timestamp; history is ordered by it
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, id)
);
-- History pagination: WHERE session_id = $1 AND chat_jid = $2 AND (sent_at, id) < ($3, $4)
-- ORDER BY sent_at DESC, id DESC LIMIT n. The second index serves the same without a chat filter.
CREATE INDEX messages_chat_history_idx ON messages (session_id, chat_jid, sent_at DESC, id DESC);
CREATE INDEX messages_history_idx ON messages (session_id, sent_at DESC, id DESC);

-- Every status change of a message (per recipient in groups).
CREATE TABLE message_status_events (
  id            bigserial   PRIMARY KEY,
  session_id    text        NOT NULL,
  message_id    text        NOT NULL,
  status        text        NOT NULL,
  recipient_jid text,
  occurred_at   timestamptz NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_status_events_message_idx ON message_status_events (session_id, message_id, occurred_at);

-- Durable webhook outbox, written in the same transaction as the change it reports. One row per delivery:
-- an event fanned out to the backend and to a session's own webhookUrl is two rows with the same event_id
-- (the receiver de-duplicates on webhook-id), hence unique on (event_id, endpoint).
CREATE TABLE webhook_outbox (
  id              bigserial   PRIMARY KEY,
  event_id        text        NOT NULL,                -- deterministic, sent as webhook-id
  session_id      text,
  endpoint        text        NOT NULL,
  event_type      text        NOT NULL,
  payload         jsonb       NOT NULL,
  status          text        NOT NULL DEFAULT 'pending',  -- pending, delivered, dead
  attempts        integer     NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  delivered_at    timestamptz,
  CONSTRAINT webhook_outbox_event_endpoint_key UNIQUE (event_id, endpoint)
);
-- The dispatcher's query: WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at.
CREATE INDEX webhook_outbox_due_idx ON webhook_outbox (status, next_attempt_at);
CREATE INDEX webhook_outbox_session_idx ON webhook_outbox (session_id);

-- Idempotency-Key of POST /messages: a retried request returns the stored response instead of sending twice.
CREATE TABLE idempotency_keys (
  session_id   text        NOT NULL,
  key          text        NOT NULL,
  request_hash text        NOT NULL,                   -- same key with a different body -> 409
  response     jsonb,                                  -- null while the first request is in flight
  status_code  integer,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);  -- expiry sweep

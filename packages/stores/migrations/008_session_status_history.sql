-- 008_session_status_history: the stored status (and disconnect) history of each session, served by
-- GET /api/v1/sessions/:id/history from any host (docs/sessions.md, "Status history"). The router writes one row
-- per status change in the same transaction as the sessions row (packages/router/src/sessions/store.ts
-- `writeStatus`): a repeat of the newest row (same status, reason, host, shard and epoch) adds nothing, and only
-- the newest 200 rows of a session are kept (trimmed in that transaction). Unlike 001's tables this one has a
-- foreign key: a session's history has no use once the session is deleted, so its rows go with it.
CREATE TABLE session_status_history (
  seq        bigserial   PRIMARY KEY,                  -- order of writes (paging cursor); `at` may tie
  session_id text        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  status     text        NOT NULL,
  reason     text,                                     -- e.g. 'restart required (515)', 'logout requested'
  host_id    text,                                     -- the host whose row write this was
  shard      integer,
  epoch      bigint,                                   -- lease epoch of the owner that reported it
  at         timestamptz NOT NULL DEFAULT now()
);
-- Newest first per session (the API's order) and the trim: WHERE session_id = $1 ORDER BY seq DESC.
CREATE INDEX session_status_history_session_idx ON session_status_history (session_id, seq DESC);

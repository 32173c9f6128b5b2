-- 003_session_registry: what the router's session registry needs on top of 001's sessions table
-- (packages/router/src/sessions, docs/sessions.md). The router is the only process that writes it.

-- What the operator/backend asked for: 'running' sessions are restored after a restart or a crash,
-- 'stopped' ones (logged out, failed, deleted) are not.
ALTER TABLE sessions ADD COLUMN desired text NOT NULL DEFAULT 'running';
-- Lease epoch of the owner whose status the row shows (epochs are clock-floored milliseconds: bigint).
ALTER TABLE sessions ADD COLUMN epoch bigint;
-- Why the status changed (e.g. 'restart required (515)', 'logged out by WhatsApp (401)').
ALTER TABLE sessions ADD COLUMN status_reason text;
-- When the session last reached 'connected'.
ALTER TABLE sessions ADD COLUMN connected_at timestamptz;

-- Restore after a restart: WHERE desired = 'running' AND host_id = $1.
CREATE INDEX sessions_desired_host_idx ON sessions (desired, host_id);

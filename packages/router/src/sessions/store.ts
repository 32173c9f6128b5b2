/**
 * The durable session registry (`sessions` table). Router-only: shards never touch SQL (in embedded mode
 * PGlite has one connection, held by the router). Status changes are written together with their webhook
 * event in one transaction.
 */
import type { SessionMe, SessionState, SqlDatabase, SqlTransaction } from '@wagw/shared';
import { isSessionState } from '@wagw/shared';

export type Desired = 'running' | 'stopped';

export interface SessionRecord {
  id: string;
  hostId: string | null;
  shard: number | null;
  status: SessionState;
  statusReason: string | null;
  webhookUrl: string | null;
  metadata: Record<string, unknown>;
  me: SessionMe | null;
  desired: Desired;
  epoch: number | null;
  createdAt: string;
  updatedAt: string;
  connectedAt: string | null;
}

interface Row extends Record<string, unknown> {
  id: string;
  host_id: string | null;
  shard: number | null;
  status: string;
  status_reason: string | null;
  webhook_url: string | null;
  metadata: Record<string, unknown> | null;
  me: SessionMe | null;
  desired: string;
  epoch: string | number | null;
  created_at: Date | string;
  updated_at: Date | string;
  connected_at: Date | string | null;
}

const COLUMNS = 'id, host_id, shard, status, status_reason, webhook_url, metadata, me, desired, epoch, created_at, updated_at, connected_at';

const iso = (v: Date | string): string => (v instanceof Date ? v.toISOString() : new Date(v).toISOString());

function toRecord(r: Row): SessionRecord {
  return {
    id: r.id,
    hostId: r.host_id,
    shard: r.shard,
    status: isSessionState(r.status) ? r.status : 'failed',
    statusReason: r.status_reason,
    webhookUrl: r.webhook_url,
    metadata: r.metadata ?? {},
    me: r.me,
    desired: r.desired === 'stopped' ? 'stopped' : 'running',
    epoch: r.epoch === null ? null : Number(r.epoch),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
    connectedAt: r.connected_at === null ? null : iso(r.connected_at),
  };
}

export interface StatusWrite {
  status: SessionState;
  reason: string | null;
  /** undefined: keep; null: clear. */
  me?: SessionMe | null;
  epoch?: number;
  desired?: Desired;
  /**
   * A shard's report at this lease epoch: written only while no newer owner placed the session (the row's
   * epoch is not higher). A woken zombie's `disconnected` must not overwrite the new owner's `connected`.
   */
  ownerEpoch?: number;
}

/** One stored status change of a session (`session_status_history`, migration 008). */
export interface StatusHistoryEntry {
  /** Order of writes; the paging cursor (`cursor`: entries with a lower seq). */
  seq: number;
  status: SessionState;
  reason: string | null;
  host: string | null;
  shard: number | null;
  epoch: number | null;
  at: string;
}

/** Stored status changes kept per session (older ones are trimmed as new ones are written). */
export const STATUS_HISTORY_KEEP = 200;

/**
 * The status change in `session_status_history`, written in the status write's transaction right after the row
 * UPDATE (which holds the session row's lock, so two writes of one session queue here). Nothing is written when
 * the newest entry already says the same (status, reason, host, shard, epoch). One statement also trims the
 * session to its newest STATUS_HISTORY_KEEP entries: the DELETE runs on the statement's snapshot, which does not
 * see the row just inserted, so it keeps KEEP - 1 of the older ones.
 */
const HISTORY_WRITE = `WITH ins AS (
    INSERT INTO session_status_history (session_id, status, reason, host_id, shard, epoch, at)
    SELECT $1::text, $2::text, $3::text, $4::text, $5::integer, $6::bigint, $7::timestamptz
    WHERE NOT EXISTS (
      SELECT 1 FROM (SELECT status, reason, host_id, shard, epoch FROM session_status_history WHERE session_id = $1::text ORDER BY seq DESC LIMIT 1) last
      WHERE last.status = $2::text AND last.reason IS NOT DISTINCT FROM $3::text AND last.host_id IS NOT DISTINCT FROM $4::text
        AND last.shard IS NOT DISTINCT FROM $5::integer AND last.epoch IS NOT DISTINCT FROM $6::bigint)
    RETURNING seq
  )
  DELETE FROM session_status_history
   WHERE session_id = $1::text AND EXISTS (SELECT 1 FROM ins)
     AND seq <= (SELECT seq FROM session_status_history WHERE session_id = $1::text ORDER BY seq DESC OFFSET $8::integer LIMIT 1)`;

/** A history row; all NULL in the one row of a session without entries (LEFT JOIN). */
interface HistoryRow extends Record<string, unknown> {
  seq: string | number | null;
  status: string;
  reason: string | null;
  host_id: string | null;
  shard: number | null;
  epoch: string | number | null;
  at: Date | string;
}

export class SessionStore {
  readonly #sql: SqlDatabase;

  constructor(sql: SqlDatabase) {
    this.#sql = sql;
  }

  /** Inserts a new session; false when the id exists. */
  async insert(input: { id: string; hostId: string; webhookUrl: string | null; metadata: Record<string, unknown> }): Promise<boolean> {
    const res = await this.#sql.query(
      `INSERT INTO sessions (id, host_id, status, webhook_url, metadata, desired) VALUES ($1, $2, 'starting', $3, $4, 'running')
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      [input.id, input.hostId, input.webhookUrl, JSON.stringify(input.metadata)],
    );
    return res.rowCount === 1;
  }

  async get(id: string): Promise<SessionRecord | null> {
    const res = await this.#sql.query<Row>(`SELECT ${COLUMNS} FROM sessions WHERE id = $1`, [id]);
    const row = res.rows[0];
    return row === undefined ? null : toRecord(row);
  }

  /** A page ordered by id; `ids` restricts it to those sessions (a session-limited caller pages over them only). */
  async list(options: { limit: number; after?: string; hostId?: string; ids?: readonly string[] }): Promise<SessionRecord[]> {
    const params: unknown[] = [];
    const where: string[] = [];
    if (options.ids !== undefined) {
      params.push([...options.ids]);
      where.push(`id = ANY($${params.length}::text[])`);
    }
    if (options.after !== undefined) {
      params.push(options.after);
      where.push(`id > $${params.length}`);
    }
    if (options.hostId !== undefined) {
      params.push(options.hostId);
      where.push(`host_id = $${params.length}`);
    }
    params.push(options.limit);
    const res = await this.#sql.query<Row>(
      `SELECT ${COLUMNS} FROM sessions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT $${params.length}`,
      params,
    );
    return res.rows.map(toRecord);
  }

  /** Session counts by status on one host (for metrics). */
  async countByStatus(hostId: string): Promise<Record<string, number>> {
    const res = await this.#sql.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM sessions WHERE host_id = $1 GROUP BY status`,
      [hostId],
    );
    return Object.fromEntries(res.rows.map((r) => [r.status, r.n]));
  }

  /** Ids to restore at start: desired running and placed on this host (or anywhere, single host). */
  async idsToRestore(hostId: string | undefined): Promise<string[]> {
    const res =
      hostId === undefined
        ? await this.#sql.query<{ id: string }>(`SELECT id FROM sessions WHERE desired = 'running' ORDER BY id`)
        : await this.#sql.query<{ id: string }>(`SELECT id FROM sessions WHERE desired = 'running' AND (host_id = $1 OR host_id IS NULL) ORDER BY id`, [hostId]);
    return res.rows.map((r) => r.id);
  }

  /**
   * Sessions that should run and whose recorded host is not among `aliveHostIds` (dead, gone or never
   * announced): the candidates of host failover.
   */
  async idsOfDeadHosts(aliveHostIds: readonly string[]): Promise<string[]> {
    const res = await this.#sql.query<{ id: string }>(
      `SELECT id FROM sessions WHERE desired = 'running' AND host_id IS NOT NULL AND NOT (host_id = ANY($1::text[])) ORDER BY id`,
      [aliveHostIds],
    );
    return res.rows.map((r) => r.id);
  }

  /** Gives the session's row to another host (cross-host migration): its reconcile claims it. */
  async assign(id: string, hostId: string): Promise<void> {
    await this.#sql.query(`UPDATE sessions SET host_id = $2, shard = NULL, updated_at = now() WHERE id = $1`, [id, hostId]);
  }

  async desiredOf(ids: readonly string[]): Promise<Map<string, Desired>> {
    if (ids.length === 0) return new Map();
    const res = await this.#sql.query<{ id: string; desired: string }>(`SELECT id, desired FROM sessions WHERE id = ANY($1::text[])`, [ids]);
    return new Map(res.rows.map((r) => [r.id, r.desired === 'stopped' ? 'stopped' : 'running']));
  }

  /** Records where a session now runs (after a claim). */
  async placed(id: string, hostId: string, shard: number, epoch: number): Promise<void> {
    await this.#sql.query(`UPDATE sessions SET host_id = $2, shard = $3, epoch = $4, desired = 'running', updated_at = now() WHERE id = $1`, [id, hostId, shard, epoch]);
  }

  async setDesired(id: string, desired: Desired): Promise<void> {
    await this.#sql.query(`UPDATE sessions SET desired = $2, updated_at = now() WHERE id = $1`, [id, desired]);
  }

  /**
   * Writes a status change and runs `then(tx, webhookUrl)` in the same transaction (the webhook enqueue).
   * Returns the updated record, or null when the session does not exist.
   */
  async writeStatus(id: string, w: StatusWrite, then?: (tx: SqlTransaction, record: SessionRecord) => Promise<void>): Promise<SessionRecord | null> {
    return await this.#sql.transaction(async (tx) => {
      const sets = ['status = $2', 'status_reason = $3', 'updated_at = now()'];
      const params: unknown[] = [id, w.status, w.reason];
      if (w.me !== undefined) {
        params.push(w.me === null ? null : JSON.stringify(w.me));
        sets.push(`me = $${params.length}::jsonb`);
      }
      if (w.epoch !== undefined) {
        params.push(w.epoch);
        sets.push(`epoch = $${params.length}`);
      }
      if (w.desired !== undefined) {
        params.push(w.desired);
        sets.push(`desired = $${params.length}`);
      }
      if (w.status === 'connected') sets.push('connected_at = now()');
      let fence = '';
      if (w.ownerEpoch !== undefined) {
        params.push(w.ownerEpoch);
        fence = ` AND (epoch IS NULL OR epoch <= $${params.length})`;
      }
      const res = await tx.query<Row>(`UPDATE sessions SET ${sets.join(', ')} WHERE id = $1${fence} RETURNING ${COLUMNS}`, params);
      const row = res.rows[0];
      if (row === undefined) return null;
      const record = toRecord(row);
      await tx.query(HISTORY_WRITE, [id, record.status, record.statusReason, record.hostId, record.shard, record.epoch, record.updatedAt, STATUS_HISTORY_KEEP - 1]);
      if (then) await then(tx, record);
      return record;
    });
  }

  /**
   * A page of the session's stored status history, newest first; `cursor`: entries older than that seq (the
   * previous page's last). Null when the session does not exist.
   */
  async history(id: string, options: { limit: number; cursor?: number }): Promise<{ data: StatusHistoryEntry[]; nextCursor: number | null } | null> {
    // One round trip: the session row (none: null) joined with the page (no entries: one row of NULLs).
    const res = await this.#sql.query<HistoryRow>(
      `SELECT h.seq, h.status, h.reason, h.host_id, h.shard, h.epoch, h.at FROM sessions s
         LEFT JOIN LATERAL (
           SELECT seq, status, reason, host_id, shard, epoch, at FROM session_status_history
            WHERE session_id = s.id AND ($2::bigint IS NULL OR seq < $2::bigint) ORDER BY seq DESC LIMIT $3
         ) h ON true
        WHERE s.id = $1 ORDER BY h.seq DESC`,
      [id, options.cursor ?? null, options.limit + 1],
    );
    if (res.rows.length === 0) return null;
    const rows = res.rows.filter((r) => r.seq !== null);
    const page = rows.slice(0, options.limit).map(
      (r): StatusHistoryEntry => ({
        seq: Number(r.seq),
        status: isSessionState(r.status) ? r.status : 'failed',
        reason: r.reason,
        host: r.host_id,
        shard: r.shard,
        epoch: r.epoch === null ? null : Number(r.epoch),
        at: iso(r.at),
      }),
    );
    return { data: page, nextCursor: rows.length > options.limit ? (page.at(-1)?.seq ?? null) : null };
  }

  /** Runs `fn` with the session's row in a transaction (QR webhooks: no row change, same transaction rule). */
  async withRecord(id: string, fn: (tx: SqlTransaction, record: SessionRecord) => Promise<void>): Promise<void> {
    await this.#sql.transaction(async (tx) => {
      const res = await tx.query<Row>(`SELECT ${COLUMNS} FROM sessions WHERE id = $1`, [id]);
      const row = res.rows[0];
      if (row !== undefined) await fn(tx, toRecord(row));
    });
  }

  async delete(id: string, then?: (tx: SqlTransaction) => Promise<void>): Promise<boolean> {
    return await this.#sql.transaction(async (tx) => {
      const res = await tx.query(`DELETE FROM sessions WHERE id = $1`, [id]);
      if (then) await then(tx);
      return res.rowCount === 1;
    });
  }
}

/**
 * Operator logic for the outbox: list deliveries (failed, dead, ...) with filters and keyset paging, replay
 * one or many, and stats for metrics and /health. HTTP-agnostic: each handler takes the raw params/query/body,
 * validates it with the exported zod schema (VALIDATION_FAILED naming the field otherwise) and returns the
 * JSON body. The route layer mounts them (docs/webhooks.md, "Operators").
 */
import { z } from 'zod';
import { GatewayError, WEBHOOK_TOPICS } from '@wagw/shared';
import type { SqlDatabase } from '@wagw/shared';
import type { OutboxStats } from './metrics.ts';

/** `failed` = pending after at least one failed attempt. */
export const DELIVERY_STATUSES = ['pending', 'failed', 'delivered', 'dead'] as const;
export type DeliveryStatusFilter = (typeof DELIVERY_STATUSES)[number];

export const webhookListQuerySchema = z
  .object({
    status: z.enum(DELIVERY_STATUSES).default('failed'),
    topic: z.enum(WEBHOOK_TOPICS).optional(),
    sessionId: z.string().min(1).max(255).optional(),
    endpoint: z.string().min(1).max(2048).optional(),
    /** Keyset cursor: rows with id below this (the previous page's `nextCursor`). */
    cursor: z.coerce.number().int().positive().optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
  })
  .strict();
export type WebhookListQuery = z.output<typeof webhookListQuerySchema>;

export const webhookIdParamsSchema = z.object({ id: z.coerce.number().int().positive() });

export const webhookReplayManyBodySchema = z
  .object({
    status: z.enum(['dead', 'failed']).default('dead'),
    /** Only rows created before this instant (ISO-8601). */
    before: z.iso.datetime({ offset: true }).optional(),
    topic: z.enum(WEBHOOK_TOPICS).optional(),
    sessionId: z.string().min(1).max(255).optional(),
    endpoint: z.string().min(1).max(2048).optional(),
    /** At most this many rows per call (default 10,000). */
    limit: z.number().int().min(1).max(100_000).default(10_000),
  })
  .strict();
export type WebhookReplayManyBody = z.output<typeof webhookReplayManyBodySchema>;

export const webhookDeliverySchema = z.object({
  id: z.number().int(),
  eventId: z.string(),
  sessionId: z.string().nullable(),
  topic: z.enum(WEBHOOK_TOPICS),
  endpoint: z.string(),
  status: z.enum(['pending', 'delivered', 'dead']),
  attempts: z.number().int(),
  lastError: z.string().nullable(),
  lastStatus: z.number().int().nullable(),
  lastAttemptAt: z.string().nullable(),
  nextAttemptAt: z.string(),
  createdAt: z.string(),
  deliveredAt: z.string().nullable(),
  payload: z.unknown(),
});
export type WebhookDelivery = z.output<typeof webhookDeliverySchema>;

export const webhookListResponseSchema = z.object({ data: z.array(webhookDeliverySchema), nextCursor: z.number().int().nullable() });
export const webhookReplayResponseSchema = z.object({ replayed: z.number().int() });
export const webhookStatsResponseSchema = z.object({
  pending: z.number().int(),
  inFlight: z.number().int(),
  failed: z.number().int(),
  dead: z.number().int(),
  oldestPendingSeconds: z.number(),
});

function parse<S extends z.ZodType>(schema: S, input: unknown, where: string): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: [where, ...i.path.map(String)].join('.'), message: i.message }));
  throw new GatewayError('VALIDATION_FAILED', issues.map((i) => `${i.path}: ${i.message}`).join('; '), { issues });
}

interface Row extends Record<string, unknown> {
  id: number;
  event_id: string;
  session_id: string | null;
  event_type: (typeof WEBHOOK_TOPICS)[number];
  endpoint: string;
  status: 'pending' | 'delivered' | 'dead';
  attempts: number;
  last_error: string | null;
  last_status: number | null;
  last_attempt_at: Date | null;
  next_attempt_at: Date;
  created_at: Date;
  delivered_at: Date | null;
  payload: unknown;
}

function toDelivery(r: Row): WebhookDelivery {
  return {
    id: r.id,
    eventId: r.event_id,
    sessionId: r.session_id,
    topic: r.event_type,
    endpoint: r.endpoint,
    status: r.status,
    attempts: r.attempts,
    lastError: r.last_error,
    lastStatus: r.last_status,
    lastAttemptAt: r.last_attempt_at?.toISOString() ?? null,
    nextAttemptAt: r.next_attempt_at.toISOString(),
    createdAt: r.created_at.toISOString(),
    deliveredAt: r.delivered_at?.toISOString() ?? null,
    payload: r.payload,
  };
}

/** WHERE clause pieces shared by list and replay-many. */
function filters(
  f: { status: DeliveryStatusFilter; topic?: string | undefined; sessionId?: string | undefined; endpoint?: string | undefined },
  params: unknown[],
): string[] {
  const where: string[] = [];
  if (f.status === 'failed') where.push(`status = 'pending' AND attempts > 0`);
  else {
    params.push(f.status);
    where.push(`status = $${params.length}`);
  }
  if (f.topic !== undefined) {
    params.push(f.topic);
    where.push(`event_type = $${params.length}`);
  }
  if (f.sessionId !== undefined) {
    params.push(f.sessionId);
    where.push(`session_id = $${params.length}`);
  }
  if (f.endpoint !== undefined) {
    params.push(f.endpoint);
    where.push(`endpoint = $${params.length}`);
  }
  return where;
}

export interface WebhookAdminOptions {
  db: SqlDatabase;
  /** Wakes the local dispatcher after a replay. */
  onReplayed?: () => void;
  /** How long stats are cached (metrics scrapes and /health share one query). Default 1000 ms. */
  statsCacheMs?: number;
}

export class WebhookAdmin {
  readonly #db: SqlDatabase;
  readonly #onReplayed: (() => void) | undefined;
  readonly #statsCacheMs: number;
  #stats: { at: number; value: Promise<OutboxStats> } | undefined;

  constructor(options: WebhookAdminOptions) {
    this.#db = options.db;
    this.#onReplayed = options.onReplayed;
    this.#statsCacheMs = options.statsCacheMs ?? 1000;
  }

  /** `GET /api/v1/admin/webhooks?status=dead&topic=&sessionId=&endpoint=&cursor=&limit=` */
  async list(query: unknown): Promise<z.output<typeof webhookListResponseSchema>> {
    const q = parse(webhookListQuerySchema, query, 'query');
    const params: unknown[] = [];
    const where = filters(q, params);
    if (q.cursor !== undefined) {
      params.push(q.cursor);
      where.push(`id < $${params.length}`);
    }
    params.push(q.limit + 1);
    const { rows } = await this.#db.query<Row>(
      `SELECT id, event_id, session_id, event_type, endpoint, status, attempts, last_error, last_status,
              last_attempt_at, next_attempt_at, created_at, delivered_at, payload
         FROM webhook_outbox WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${params.length}`,
      params,
    );
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    return { data: page.map(toDelivery), nextCursor: rows.length > q.limit && last !== undefined ? last.id : null };
  }

  /** `POST /api/v1/admin/webhooks/:id/replay`: the row is pending again, due now, with a fresh retry window. */
  async replayOne(params: unknown): Promise<z.output<typeof webhookReplayResponseSchema>> {
    const { id } = parse(webhookIdParamsSchema, params, 'params');
    const { rowCount } = await this.#db.query(
      `UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_attempt_at = now(), replayed_at = now(),
              delivered_at = NULL, locked_by = NULL, locked_until = NULL
        WHERE id = $1 AND (status <> 'pending' OR locked_by IS NULL)`,
      [id],
    );
    if (rowCount === 0) {
      const exists = await this.#db.query('SELECT 1 FROM webhook_outbox WHERE id = $1', [id]);
      if (exists.rowCount === 0) throw new GatewayError('NOT_FOUND', `No webhook delivery with id ${id}.`, { id });
      throw new GatewayError('CONFLICT', `Webhook delivery ${id} is being delivered right now.`, { id });
    }
    this.#stats = undefined;
    this.#onReplayed?.();
    return { replayed: 1 };
  }

  /** `POST /api/v1/admin/webhooks/replay` `{status: 'dead'|'failed', before?, topic?, sessionId?, endpoint?, limit?}` */
  async replayMany(body: unknown): Promise<z.output<typeof webhookReplayResponseSchema>> {
    const b = parse(webhookReplayManyBodySchema, body, 'body');
    const params: unknown[] = [];
    const where = filters(b, params);
    if (b.status === 'failed') where.push('locked_by IS NULL');
    if (b.before !== undefined) {
      params.push(b.before);
      where.push(`created_at < $${params.length}::timestamptz`);
    }
    params.push(b.limit);
    const { rowCount } = await this.#db.query(
      `UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_attempt_at = now(), replayed_at = now(),
              locked_by = NULL, locked_until = NULL
        WHERE id IN (SELECT id FROM webhook_outbox WHERE ${where.join(' AND ')} ORDER BY id LIMIT $${params.length})`,
      params,
    );
    this.#stats = undefined;
    if (rowCount > 0) this.#onReplayed?.();
    return { replayed: rowCount };
  }

  /** Depth by status and the oldest pending age (cached for `statsCacheMs`). */
  stats(): Promise<OutboxStats> {
    const now = Date.now();
    if (this.#stats !== undefined && now - this.#stats.at < this.#statsCacheMs) return this.#stats.value;
    const value = this.#queryStats();
    this.#stats = { at: now, value };
    value.catch(() => {
      if (this.#stats?.value === value) this.#stats = undefined;
    });
    return value;
  }

  async #queryStats(): Promise<OutboxStats> {
    const { rows } = await this.#db.query<{ pending: number; in_flight: number; failed: number; dead: number; oldest: number | null }>(
      `SELECT
         (SELECT count(*) FROM webhook_outbox WHERE status = 'pending') AS pending,
         (SELECT count(*) FROM webhook_outbox WHERE status = 'pending' AND locked_until > now()) AS in_flight,
         (SELECT count(*) FROM webhook_outbox WHERE status = 'pending' AND attempts > 0) AS failed,
         (SELECT count(*) FROM webhook_outbox WHERE status = 'dead') AS dead,
         (SELECT extract(epoch FROM now() - created_at)::float8 FROM webhook_outbox WHERE status = 'pending' ORDER BY id LIMIT 1) AS oldest`,
    );
    const r = rows[0];
    return {
      pending: r?.pending ?? 0,
      inFlight: r?.in_flight ?? 0,
      failed: r?.failed ?? 0,
      dead: r?.dead ?? 0,
      oldestPendingSeconds: Math.max(0, r?.oldest ?? 0),
    };
  }
}

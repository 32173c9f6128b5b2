/**
 * The dispatcher's one statement per cycle: record the results of finished deliveries and claim the next rows
 * (docs/webhooks.md, "Delivery"). One round trip and one commit instead of a record UPDATE and a claim UPDATE
 * each: every statement is a commit (an fsync), and the two used to run at different times.
 *
 * Both parts see the statement's one snapshot, so the claim does not see this statement's results: a row being
 * recorded still looks pending and claimed (its `next_attempt_at` is the lease end), which keeps a stream's next
 * row blocked until the following cycle (the dispatcher runs that cycle at once) and keeps the claim from
 * touching a row the record part updates (also excluded by id: a row whose lease lapsed would otherwise look due).
 *
 * The rows are found through the primary key (`id = ANY(...)`): joined on `id` alone, PostgreSQL hashed the whole
 * table (delivered rows included, kept WEBHOOK_RETENTION_MS) for every statement.
 */
import type { WebhookTopic } from '@wagw/shared';

export const CYCLE_SQL = `
WITH recorded AS (
  UPDATE webhook_outbox o
     SET status = v.status,
         attempts = o.attempts + CASE WHEN v.attempted THEN 1 ELSE 0 END,
         next_attempt_at = v.next_at,
         last_attempt_at = CASE WHEN v.attempted THEN now() ELSE o.last_attempt_at END,
         last_status = CASE WHEN v.attempted THEN v.http_status ELSE o.last_status END,
         last_error = CASE WHEN v.attempted THEN v.error ELSE o.last_error END,
         delivered_at = CASE WHEN v.status = 'delivered' THEN now() ELSE NULL END,
         locked_by = NULL,
         locked_until = NULL
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::boolean[], $5::timestamptz[], $6::int[], $7::text[])
         AS v(id, token, status, attempted, next_at, http_status, error)
   -- Results are recorded only under the claim's token: a late result never overwrites a newer claim.
   WHERE o.id = ANY($1::bigint[]) AND o.id = v.id AND o.locked_by = v.token
  RETURNING o.id),
due AS (
  SELECT o.id FROM webhook_outbox o
   WHERE o.status = 'pending'
     -- A breaker's probe ($11) takes the origin's next unclaimed row even when that row's own retry
     -- backoff runs longer: the breaker's schedule, not a row's backoff, decides when a receiver that
     -- came back is found again.
     AND (o.next_attempt_at <= now() OR ($11::text IS NOT NULL AND o.locked_by IS NULL))
     AND NOT (o.endpoint LIKE ANY ($10::text[]))
     AND ($11::text IS NULL OR o.endpoint LIKE $11)
     AND NOT (o.id = ANY($1::bigint[]))
     AND (o.ordering_key IS NULL OR NOT EXISTS (
           SELECT 1 FROM webhook_outbox p
            WHERE p.endpoint = o.endpoint AND p.ordering_key = o.ordering_key
              AND p.status = 'pending' AND p.id < o.id))
   ORDER BY o.next_attempt_at, o.id
   LIMIT $9
   FOR UPDATE OF o SKIP LOCKED)
UPDATE webhook_outbox w
   SET locked_by = $8,
       locked_until = now() + $12 * interval '1 millisecond',
       next_attempt_at = now() + $12 * interval '1 millisecond'
 WHERE w.id = ANY(ARRAY(SELECT id FROM due))
RETURNING w.id, w.event_id, w.endpoint, w.session_id, w.event_type, w.payload::text AS body, w.request_id, w.attempts,
          coalesce(w.replayed_at, w.created_at) AS age_base`;

/** What a delivery (or a release) leaves to record. */
export interface RecordedResult {
  id: number;
  token: string;
  status: 'pending' | 'delivered' | 'dead';
  /** Counts as an attempt (false: released unattempted, e.g. breaker open or stopping). */
  attempted: boolean;
  nextAttemptAt: Date;
  httpStatus: number | null;
  error: string | null;
}

export interface CycleClaim {
  token: string;
  limit: number;
  /** LIKE patterns of origins not to claim (open breakers, probes claimed separately). */
  exclude: string[];
  /** LIKE pattern of the one origin a probe claims from, or null. */
  only: string | null;
  lockTimeoutMs: number;
}

export interface CycleRow extends Record<string, unknown> {
  id: number;
  event_id: string;
  endpoint: string;
  session_id: string;
  event_type: WebhookTopic;
  body: string;
  request_id: string | null;
  attempts: number;
  age_base: Date;
}

export function cycleParams(results: readonly RecordedResult[], claim: CycleClaim): unknown[] {
  return [
    results.map((r) => r.id),
    results.map((r) => r.token),
    results.map((r) => r.status),
    results.map((r) => r.attempted),
    results.map((r) => r.nextAttemptAt.toISOString()),
    results.map((r) => r.httpStatus),
    results.map((r) => (r.error === null ? null : r.error.slice(0, 500))),
    claim.token,
    claim.limit,
    claim.exclude,
    claim.only,
    claim.lockTimeoutMs,
  ];
}

/** Operator routes for webhook deliveries (`/api/v1/admin/webhooks...`, scope admin), over WebhookAdmin. */
import { z } from 'zod';
import type { WebhookAdmin } from '../webhooks/admin.ts';
import type { BreakerSnapshot } from '../webhooks/breakers.ts';
import {
  webhookIdParamsSchema,
  webhookListQuerySchema,
  webhookListResponseSchema,
  webhookReplayManyBodySchema,
  webhookReplayResponseSchema,
} from '../webhooks/admin.ts';
import { defineRoute } from './define-route.ts';
import type { RouteDefinition } from './define-route.ts';
import { errorSchema } from './schemas.ts';

const ADMIN = { scopes: ['admin'] } as const;
const err = (description: string) => ({ description, schema: errorSchema });

// Ids and cursors are bigint rows: a number past the safe range is a 400 here, never a database error.
const rowId = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const idParams = webhookIdParamsSchema.extend({ id: rowId });
const listQuery = webhookListQuerySchema.extend({ cursor: rowId.optional() });

const breakerSchema = z
  .object({
    origin: z.string().describe('Receiver origin (scheme://host:port): one breaker per origin'),
    state: z.enum(['closed', 'open', 'half-open']).describe('open: no delivery is tried until nextTryAt; half-open: the one probe is in flight'),
    consecutiveFailures: z.number().int().describe('"Endpoint down" outcomes (no answer, 408, 429, 5xx) since the last success'),
    lastFailureAt: z.string().nullable(),
    lastError: z.string().nullable().describe('Short error of the last failure, e.g. `HTTP 500` or `ECONNREFUSED`'),
    openedAt: z.string().nullable().describe('When the breaker opened (null while closed)'),
    nextTryAt: z.string().nullable().describe('When an open breaker lets its probe through'),
    waitMs: z.number().int().nullable().describe('The current half-open wait (doubles per failed probe up to WEBHOOK_BREAKER_HALF_OPEN_MAX_MS)'),
  })
  .meta({ id: 'WebhookBreaker' });

const breakersResponse = z
  .object({ hostId: z.string().describe('The host that answered: breakers are per router process'), breakers: z.array(breakerSchema) })
  .meta({ id: 'WebhookBreakerList' });

/** `breakers`: this router's circuit breakers (the dispatcher's; none without one). */
export function webhookAdminRoutes(admin: WebhookAdmin, breakers: () => BreakerSnapshot[], hostId: string): RouteDefinition[] {
  return [
    defineRoute({
      method: 'get',
      path: '/api/v1/admin/webhooks/breakers',
      summary: "The circuit breakers of the host that answers, per receiver origin: state, consecutive failures, last failure, when it opened and when it tries again",
      description:
        'Breakers live in each router process (docs/webhooks.md, "Circuit breakers"): each host answers with its own, and a receiver may be open on one host and closed on another. Closed breakers unused for 10 minutes are forgotten.',
      tags: ['admin'],
      auth: ADMIN,
      responses: { 200: { description: 'Breakers of this host', schema: breakersResponse } },
      handler: (ctx) => {
        ctx.body = { hostId, breakers: breakers() };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/api/v1/admin/webhooks',
      summary: 'Webhook deliveries, newest first (default: failed = pending after a failed attempt); keyset paging with nextCursor',
      tags: ['admin'],
      auth: ADMIN,
      query: listQuery,
      responses: { 200: { description: 'Deliveries', schema: webhookListResponseSchema }, 400: err('Invalid filter (VALIDATION_FAILED)') },
      handler: async (ctx, { query }) => {
        ctx.body = await admin.list(query);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/api/v1/admin/webhooks/replay',
      summary: 'Replay many deliveries (dead or failed, with filters): pending again, due now, attempts reset',
      tags: ['admin'],
      auth: ADMIN,
      body: webhookReplayManyBodySchema,
      responses: { 200: { description: 'How many rows are pending again', schema: webhookReplayResponseSchema }, 400: err('Invalid request (VALIDATION_FAILED, INVALID_JSON)') },
      handler: async (ctx, { body }) => {
        ctx.body = await admin.replayMany(body);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/api/v1/admin/webhooks/:id/replay',
      summary: 'Replay one delivery: pending again, due now, attempts reset, a fresh WEBHOOK_MAX_AGE_MS window',
      tags: ['admin'],
      auth: ADMIN,
      params: idParams,
      responses: {
        200: { description: 'Replayed', schema: webhookReplayResponseSchema },
        400: err('Invalid id (VALIDATION_FAILED)'),
        404: err('No such delivery'),
        409: err('The delivery is in flight'),
      },
      handler: async (ctx, { params }) => {
        ctx.body = await admin.replayOne(params);
      },
    }),
  ];
}

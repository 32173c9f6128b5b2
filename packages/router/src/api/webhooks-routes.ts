/** Operator routes for webhook deliveries (`/api/v1/admin/webhooks...`, scope admin), over WebhookAdmin. */
import { z } from 'zod';
import type { WebhookAdmin } from '../webhooks/admin.ts';
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

export function webhookAdminRoutes(admin: WebhookAdmin): RouteDefinition[] {
  return [
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

/** zod schemas of the session and admin API (requests and responses); the OpenAPI document is built from them. */
import { z } from 'zod';
import { SESSION_STATES } from '@wagw/shared';

export const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export const sessionIdSchema = z
  .string()
  .regex(SESSION_ID, 'must be 1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit');

export const idParams = z.object({ id: sessionIdSchema });

const metadataSchema = z
  .record(z.string().max(128), z.unknown())
  .refine((v) => Object.keys(v).length <= 64, 'must have at most 64 keys')
  .refine((v) => JSON.stringify(v).length <= 16 * 1024, 'must be at most 16 KB as JSON');

export const createSessionBody = z
  .object({
    id: sessionIdSchema.optional(),
    webhookUrl: z
      .string()
      .max(2048, 'must be at most 2048 characters')
      .refine((v) => {
        try {
          const u = new URL(v);
          return u.protocol === 'http:' || u.protocol === 'https:';
        } catch {
          return false;
        }
      }, 'must be an http(s) URL')
      .optional(),
    metadata: metadataSchema.optional(),
  })
  .strict()
  .meta({ id: 'CreateSessionRequest' });

export const sessionStatusSchema = z.enum(SESSION_STATES);

export const meSchema = z
  .object({ phone: z.string(), jid: z.string(), lid: z.string().optional(), name: z.string().optional() })
  .meta({ id: 'SessionMe' });

export const createdSchema = z
  .object({
    id: z.string(),
    status: sessionStatusSchema,
    shard: z.number().int(),
    host: z.string(),
    webhookSecret: z.string().optional().describe('With a webhookUrl only, returned once: the `whsec_...` secret that URL\'s webhooks are signed with (Standard Webhooks).'),
  })
  .meta({ id: 'SessionCreated' });

export const sessionSchema = z
  .object({
    id: z.string(),
    status: sessionStatusSchema,
    reason: z.string().optional(),
    me: meSchema.optional(),
    shard: z.number().int().nullable(),
    host: z.string().nullable(),
    desired: z.enum(['running', 'stopped']),
    metadata: z.record(z.string(), z.unknown()),
    webhookUrl: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    connectedAt: z.string().nullable(),
  })
  .meta({ id: 'Session' });

export const listQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(100),
    after: sessionIdSchema.optional(),
  })
  .strict();

export const sessionListSchema = z.object({ data: z.array(sessionSchema), nextCursor: z.string().nullable() }).meta({ id: 'SessionList' });

export const historyQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(200).default(50),
    cursor: z.coerce
      .number()
      .int()
      .positive()
      .max(Number.MAX_SAFE_INTEGER)
      .optional()
      .describe('Entries older than this one (the previous page\'s `nextCursor`)'),
  })
  .strict();

export const statusChangeSchema = z
  .object({
    seq: z.number().int().describe('Order of the writes; the paging cursor'),
    status: sessionStatusSchema,
    reason: z.string().nullable().describe("Why, e.g. 'restart required (515)', 'logged out by WhatsApp (401)', 'logout requested'"),
    host: z.string().nullable().describe('The host the session was placed on'),
    shard: z.number().int().nullable(),
    epoch: z.number().int().nullable().describe('Lease epoch of the owner that reported it'),
    at: z.string(),
  })
  .meta({ id: 'SessionStatusChange' });

export const statusHistorySchema = z
  .object({ data: z.array(statusChangeSchema), nextCursor: z.number().int().nullable() })
  .meta({ id: 'SessionStatusHistory' });

export const qrQuery = z.object({ format: z.enum(['png', 'svg', 'text', 'json']).default('json') }).strict();

export const qrJsonSchema = z
  .object({ id: z.string(), qr: z.string(), expiresAt: z.string() })
  .meta({ id: 'SessionQr' });

export const pairingBody = z
  .object({
    phone: z
      .string()
      .regex(/^\+?[0-9]{8,15}$/, 'must be the phone number in international format, 8-15 digits with an optional leading +, e.g. +6287733760363'),
  })
  .strict()
  .meta({ id: 'PairingCodeRequest' });

export const pairingResponse = z.object({ code: z.string() }).meta({ id: 'PairingCode' });

export const migrateBody = z
  .object({ shard: z.number().int().min(0).max(255).optional(), host: z.string().min(1).max(64).optional() })
  .strict()
  .meta({ id: 'MigrateRequest' });

export const migrateResponse = z
  .object({ id: z.string(), shard: z.number().int(), host: z.string(), epoch: z.number().int() })
  .meta({ id: 'MigrateResult' });

export const restartResponse = z.object({ id: z.string(), shard: z.number().int(), host: z.string() }).meta({ id: 'RestartResult' });

export const shardViewSchema = z
  .object({
    index: z.number().int(),
    state: z.string(),
    pid: z.number().int().nullable(),
    sessions: z.number().int(),
    maxSessions: z.number().int(),
    draining: z.boolean(),
    restarts: z.number().int(),
  })
  .meta({ id: 'Shard' });

export const shardsResponse = z.object({ hostId: z.string(), count: z.number().int(), shards: z.array(shardViewSchema) }).meta({ id: 'ShardList' });

export const setShardsBody = z.object({ count: z.number().int().min(1).max(256) }).strict().meta({ id: 'SetShardCountRequest' });

export const hostsResponse = z
  .object({
    hosts: z.array(
      z.object({
        hostId: z.string(),
        url: z.string(),
        state: z.enum(['alive', 'draining', 'dead']).describe('dead: no heartbeat for HOST_DEAD_AFTER_MS'),
        shards: z.number().int(),
        shardsReady: z.number().int(),
        sessions: z.number().int(),
        capacity: z.number().int().describe('shards * SHARD_MAX_SESSIONS (ready shards)'),
        draining: z.boolean(),
        lastHeartbeatAt: z.string(),
        updatedAt: z.string(),
        expiresAt: z.number().describe('epoch ms after which the host counts as dead'),
      }),
    ),
  })
  .meta({ id: 'HostList' });

export const hostParams = z.object({ id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be a host id (1-64 characters of A-Z a-z 0-9 . _ -)') });

export const drainResponse = z
  .object({ hostId: z.string(), moved: z.number().int(), remaining: z.number().int().describe('sessions still on the host (no other host had room)') })
  .meta({ id: 'DrainResult' });

export const errorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }) })
  .meta({ id: 'Error' });

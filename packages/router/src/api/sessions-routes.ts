/** The session REST API (`/api/v1/sessions`) and the operator routes (`/api/v1/admin`), as route definitions. */
import { GatewayError } from '@wagw/shared';
import type { HostRegistry } from '@wagw/shared';
import { ANONYMOUS, assertSessionAllowed, sessionAllowed } from '../security/principal.ts';
import type { SessionManager } from '../sessions/manager.ts';
import { defineRoute } from './define-route.ts';
import type { RouteDefinition } from './define-route.ts';
import { sessionWebhookSecret } from '../webhooks/secrets.ts';
import { FORWARDED_HEADER, createForwarder, forwardToHost } from './forward.ts';
import { respondWithEvents } from './sse.ts';
import type { EventHub } from './sse.ts';
import {
  createSessionBody,
  createdSchema,
  drainResponse,
  errorSchema,
  hostParams,
  historyQuery,
  hostsResponse,
  idParams,
  listQuery,
  migrateBody,
  migrateResponse,
  pairingBody,
  pairingResponse,
  qrJsonSchema,
  qrQuery,
  restartResponse,
  sessionListSchema,
  sessionSchema,
  setShardsBody,
  statusHistorySchema,
  shardsResponse,
} from './schemas.ts';

export interface SessionRoutesDeps {
  manager: SessionManager;
  hub: EventHub;
  hosts: HostRegistry;
  /**
   * Checks a session's webhookUrl at creation (security's validateWebhookUrl: scheme, no credentials, every
   * resolved address public unless WEBHOOK_ALLOW_PRIVATE_TARGETS); returns the normalised URL or throws 400.
   */
  checkWebhookUrl?: (url: string) => Promise<string>;
  /** WEBHOOK_SECRET: a created session's webhookUrl gets its own secret derived from it (webhooks/secrets.ts). */
  webhookSecret?: string;
  /** CLUSTER_SECRET: forwarded calls are signed with it (security/forwarded.ts). */
  clusterSecret?: string;
}

const err = (description: string) => ({ description, schema: errorSchema });
const E400 = err('Invalid request (VALIDATION_FAILED, INVALID_JSON)');
const E404 = err('No such session (SESSION_NOT_FOUND)');
const E503 = err('No shard available (SHARD_UNAVAILABLE, NO_CAPACITY, SHUTTING_DOWN)');

const SESSIONS = '/api/v1/sessions';
const WRITE = { scopes: ['sessions:write'], sessionParam: 'id' } as const;
const READ = { scopes: ['sessions:read'], sessionParam: 'id' } as const;

export function sessionRoutes(deps: SessionRoutesDeps): RouteDefinition[] {
  const { manager, hub, hosts, checkWebhookUrl, webhookSecret, clusterSecret } = deps;

  /** True when the call was proxied to the host that owns the session. */
  const forwarded = createForwarder(manager, hosts, clusterSecret);

  return [
    defineRoute({
      method: 'post',
      path: SESSIONS,
      summary: 'Create a session and start its socket (then fetch the QR or ask for a pairing code)',
      description:
        'The 201 response carries `Location: /api/v1/sessions/{id}`. With a `webhookUrl`, it also carries `webhookSecret`: the Standard Webhooks secret that URL\'s deliveries are signed with (its own, derived from the session id and the URL; never the backend\'s). It is returned only here: store it with the receiver (docs/webhooks.md).',
      tags: ['sessions'],
      auth: { scopes: ['sessions:write'] },
      body: createSessionBody,
      responses: {
        201: { description: 'Created and starting (on a draining host: created on the least-loaded other host, see `host`)', schema: createdSchema },
        400: E400,
        409: err('The id exists (SESSION_EXISTS)'),
        503: err('No shard available (SHARD_UNAVAILABLE, NO_CAPACITY, SHUTTING_DOWN), or this host is draining and no other host takes sessions (HOST_UNAVAILABLE, with Retry-After)'),
      },
      handler: async (ctx, { body }) => {
        const principal = ctx.state.principal ?? ANONYMOUS;
        if (body.id !== undefined) assertSessionAllowed(principal, body.id);
        else if (principal.sessions !== undefined) {
          throw new GatewayError('SESSION_NOT_ALLOWED', 'These credentials are limited to listed sessions: give the session id.', { session: null });
        }
        const input: { id?: string; webhookUrl?: string; metadata?: Record<string, unknown> } = {};
        if (body.id !== undefined) input.id = body.id;
        if (body.webhookUrl !== undefined) input.webhookUrl = checkWebhookUrl === undefined ? body.webhookUrl : await checkWebhookUrl(body.webhookUrl);
        if (body.metadata !== undefined) input.metadata = body.metadata;
        if (manager.draining) {
          // A draining host takes no new session: the least-loaded live host does (the create is forwarded,
          // signed; a create forwarded here already is refused by the manager). None left: 503, retry later.
          const to = ctx.get(FORWARDED_HEADER) ? null : await manager.placementHost();
          if (to === null) {
            ctx.set('retry-after', '5');
            throw new GatewayError('HOST_UNAVAILABLE', `Host ${manager.hostId} is draining and no other host takes new sessions.`, { host: manager.hostId });
          }
          await forwardToHost(ctx, hosts, to, manager.hostId, { clusterSecret });
          return;
        }
        const created = await manager.create(input, ctx.state.reqId).catch((e: unknown) => {
          if (e instanceof GatewayError && e.code === 'HOST_UNAVAILABLE') ctx.set('retry-after', '5');
          throw e;
        });
        ctx.status = 201;
        ctx.set('location', `${SESSIONS}/${encodeURIComponent(created.id)}`);
        if (input.webhookUrl !== undefined && webhookSecret !== undefined) {
          ctx.set('cache-control', 'no-store');
          ctx.body = { ...created, webhookSecret: sessionWebhookSecret(webhookSecret, created.id, input.webhookUrl) };
        } else {
          ctx.body = created;
        }
      },
    }),
    defineRoute({
      method: 'get',
      path: SESSIONS,
      summary: 'List sessions (ordered by id, paginated with `after`)',
      tags: ['sessions'],
      auth: { scopes: ['sessions:read'] },
      query: listQuery,
      responses: { 200: { description: 'Sessions', schema: sessionListSchema }, 400: E400 },
      handler: async (ctx, { query }) => {
        // A principal limited to some sessions pages over those only: a cursor taken from the whole table would
        // name the next foreign session id, and paging would walk them all.
        const principal = ctx.state.principal ?? ANONYMOUS;
        const page = await manager.list({
          limit: query.limit,
          ...(query.after === undefined ? {} : { after: query.after }),
          ...(principal.sessions === undefined ? {} : { ids: principal.sessions }),
        });
        const data = page.filter((s) => sessionAllowed(principal, s.id));
        ctx.body = { data, nextCursor: page.length === query.limit ? (page.at(-1)?.id ?? null) : null };
      },
    }),
    defineRoute({
      method: 'get',
      path: `${SESSIONS}/:id`,
      summary: 'A session: status, linked account, placement',
      tags: ['sessions'],
      auth: READ,
      params: idParams,
      responses: { 200: { description: 'The session', schema: sessionSchema }, 404: E404 },
      handler: async (ctx, { params }) => {
        ctx.body = await manager.get(params.id);
      },
    }),
    defineRoute({
      method: 'get',
      path: `${SESSIONS}/:id/history`,
      summary: 'Stored status history of the session, newest first (paginated with `cursor`): each change with its reason, host, shard and lease epoch',
      description:
        'Written with each status change in the same transaction as the session row; a repeat of the newest entry adds none, the newest 200 are kept, and they are deleted with the session. Any host answers from the database (docs/sessions.md, "Status history").',
      tags: ['sessions'],
      auth: READ,
      params: idParams,
      query: historyQuery,
      responses: { 200: { description: 'Status changes', schema: statusHistorySchema }, 404: E404 },
      handler: async (ctx, { params, query }) => {
        const page = await manager.store.history(params.id, { limit: query.limit, ...(query.cursor === undefined ? {} : { cursor: query.cursor }) });
        if (page === null) throw new GatewayError('SESSION_NOT_FOUND', `No session ${params.id}.`, { id: params.id });
        ctx.body = page;
      },
    }),
    defineRoute({
      method: 'get',
      path: `${SESSIONS}/:id/qr`,
      summary: 'The current QR code as PNG, SVG, text or JSON',
      tags: ['sessions'],
      auth: READ,
      params: idParams,
      query: qrQuery,
      responses: {
        200: { description: 'The QR code', schema: qrJsonSchema, contentTypes: { 'image/png': 'PNG image', 'image/svg+xml': 'SVG image', 'text/plain': 'The QR drawn with characters' } },
        404: err('No session, or no current QR (QR_NOT_AVAILABLE)'),
        409: err('Already connected (SESSION_ALREADY_CONNECTED)'),
      },
      handler: async (ctx, { params, query }) => {
        const qr = await manager.currentQr(params.id);
        const expiresAt = new Date(qr.expiresAt).toISOString();
        ctx.set('cache-control', 'no-store');
        ctx.set('x-qr-expires-at', expiresAt);
        if (query.format === 'json') {
          ctx.body = { id: params.id, qr: qr.qr, expiresAt };
          return;
        }
        const rendered = await manager.renderQr(qr.qr, query.format === 'text' ? 'utf8' : query.format, qr.shard, ctx.state.reqId);
        ctx.type = rendered.contentType;
        ctx.body = rendered.encoding === 'base64' ? Buffer.from(rendered.data, 'base64') : rendered.data;
      },
    }),
    defineRoute({
      method: 'post',
      path: `${SESSIONS}/:id/pairing-code`,
      summary: 'Log in by phone number: returns the 8-character code to enter on the phone',
      tags: ['sessions'],
      auth: WRITE,
      params: idParams,
      body: pairingBody,
      responses: { 200: { description: 'The code', schema: pairingResponse }, 400: E400, 404: E404, 409: err('Connected, or not running') },
      handler: async (ctx, { params, body }) => {
        if (await forwarded(ctx, params.id)) return;
        ctx.body = { code: await manager.pairingCode(params.id, body.phone.replace(/^\+/, ''), ctx.state.reqId) };
      },
    }),
    defineRoute({
      method: 'post',
      path: `${SESSIONS}/:id/restart`,
      summary: 'Stop the socket (state flushed, no logout) and start it again',
      tags: ['sessions'],
      auth: WRITE,
      params: idParams,
      responses: { 200: { description: 'Restarted', schema: restartResponse }, 404: E404, 503: E503 },
      handler: async (ctx, { params }) => {
        if (await forwarded(ctx, params.id)) return;
        const { shard } = await manager.restart(params.id, ctx.state.reqId);
        ctx.body = { id: params.id, shard, host: manager.hostId };
      },
    }),
    defineRoute({
      method: 'post',
      path: `${SESSIONS}/:id/logout`,
      summary: 'Unlink the device at WhatsApp and wipe its stored state (the session record stays)',
      tags: ['sessions'],
      auth: WRITE,
      params: idParams,
      responses: { 200: { description: 'Logged out', schema: sessionSchema }, 404: E404 },
      handler: async (ctx, { params }) => {
        if (await forwarded(ctx, params.id)) return;
        ctx.body = await manager.logout(params.id, ctx.state.reqId);
      },
    }),
    defineRoute({
      method: 'delete',
      path: `${SESSIONS}/:id`,
      summary: 'Stop, log out and delete every stored byte of the session',
      tags: ['sessions'],
      auth: WRITE,
      params: idParams,
      responses: { 204: { description: 'Deleted' }, 404: E404 },
      handler: async (ctx, { params }) => {
        if (await forwarded(ctx, params.id)) return;
        await manager.delete(params.id, ctx.state.reqId);
        ctx.status = 204;
      },
    }),
    defineRoute({
      method: 'post',
      path: `${SESSIONS}/:id/migrate`,
      summary: 'Hand the live session to another shard or host (flush, close, release, claim with a higher epoch, reconnect); callable on any host',
      tags: ['sessions'],
      auth: WRITE,
      params: idParams,
      body: migrateBody,
      responses: { 200: { description: 'Migrated', schema: migrateResponse }, 400: E400, 404: E404, 503: E503 },
      handler: async (ctx, { params, body }) => {
        if (await forwarded(ctx, params.id)) return;
        if (body.host !== undefined && body.host !== manager.hostId) {
          // Cross-host: this host (the owner, or any host when the session is not running) stops the session and
          // gives its row to the target, then asks the target to claim and start it now. Should that call fail,
          // the target's reconcile claims it within a renewal interval (or, when the target died, any live host).
          await manager.handOff(params.id, body.host, ctx.state.reqId);
          await forwardToHost(ctx, hosts, body.host, manager.hostId, { handOff: true, clusterSecret });
          return;
        }
        const target: { shard?: number; host?: string } = {};
        if (body.shard !== undefined) target.shard = body.shard;
        if (body.host !== undefined) target.host = body.host;
        ctx.body = await manager.migrate(params.id, target, ctx.state.reqId);
      },
    }),
    defineRoute({
      method: 'get',
      path: `${SESSIONS}/:id/events`,
      summary: 'Server-Sent Events of the session: status, qr, message (first event: the current status)',
      tags: ['sessions'],
      auth: READ,
      params: idParams,
      responses: {
        200: { description: 'An event stream', contentTypes: { 'text/event-stream': 'event: status|qr|message|deleted, data: JSON' } },
        404: E404,
        429: err('Too many event streams: of this session, of these credentials on it, of these credentials, or in all (TOO_MANY_STREAMS; details.limit says which)'),
        503: E503,
      },
      handler: async (ctx, { params }) => {
        if (await forwarded(ctx, params.id)) return;
        const initial = await manager.initialEvents(params.id);
        // Capped per session, per credential on the session, per credential and in total: 429 TOO_MANY_STREAMS.
        const principal = ctx.state.principal ?? ANONYMOUS;
        const stream = hub.subscribe(params.id, initial, `${principal.kind}:${principal.subject}`);
        respondWithEvents(ctx, stream);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/api/v1/admin/shards',
      summary: 'Shards of this host with their session counts',
      tags: ['admin'],
      auth: { scopes: ['admin'] },
      responses: { 200: { description: 'Shards', schema: shardsResponse } },
      handler: (ctx) => {
        const shards = manager.shards();
        ctx.body = { hostId: manager.hostId, count: shards.length, shards };
      },
    }),
    defineRoute({
      method: 'put',
      path: '/api/v1/admin/shards',
      summary: 'Grow or shrink the shard count of this host (shrinking migrates sessions first)',
      tags: ['admin'],
      auth: { scopes: ['admin'] },
      body: setShardsBody,
      responses: { 200: { description: 'The shards after the change', schema: shardsResponse }, 400: E400, 503: E503 },
      handler: async (ctx, { body }) => {
        const shards = await manager.setShardCount(body.count);
        ctx.body = { hostId: manager.hostId, count: shards.length, shards };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/api/v1/admin/hosts',
      summary: 'Routers of the cluster (host registry): alive, draining and dead hosts with load and last heartbeat',
      tags: ['admin'],
      auth: { scopes: ['admin'] },
      responses: { 200: { description: 'Hosts', schema: hostsResponse } },
      handler: async (ctx) => {
        ctx.body = { hosts: await manager.hosts() };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/api/v1/admin/hosts/:id/drain',
      summary: 'Drain a host (callable on any host): it goes not-ready and hands every session to the other live hosts',
      tags: ['admin'],
      auth: { scopes: ['admin'] },
      params: hostParams,
      responses: {
        200: { description: 'Sessions handed off (each is claimed by its new host within a renewal interval)', schema: drainResponse },
        400: E400,
        404: err('No such host (HOST_NOT_FOUND)'),
        503: err('The host is not reachable (SHARD_UNAVAILABLE)'),
      },
      handler: async (ctx, { params }) => {
        if (params.id !== manager.hostId) {
          const known = (await manager.hosts()).find((h) => h.hostId === params.id);
          if (known === undefined) throw new GatewayError('HOST_NOT_FOUND', `No host ${params.id} in the host registry.`, { host: params.id });
          await forwardToHost(ctx, hosts, params.id, manager.hostId, { clusterSecret });
          return;
        }
        ctx.body = await manager.drain(ctx.state.reqId);
      },
    }),
  ];
}


/**
 * Multi-host: a call for a session whose lease another host holds is proxied to that host's router (its
 * PUBLIC_URL from the host registry), so the backend never needs to know where a session lives. A forwarded
 * request carries `x-wagw-forwarded-by`; a router never forwards such a request again (no loops).
 *
 * The JSON body goes on as the client sent it (`ctx.state.rawBody`, read by the route layer): the owner
 * validates it again and computes the same Idempotency-Key fingerprint. Credentials, `Idempotency-Key` and the
 * request id pass; the owner's `Location`, `Retry-After`, `Idempotent-Replayed` and `Content-Disposition`
 * come back.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { GatewayError } from '@wagw/shared';
import type { HostRegistry } from '@wagw/shared';
import type { AppContext } from '../app.ts';
import { FORWARD_HEADERS, signForwarded } from '../security/forwarded.ts';
import type { SessionManager } from '../sessions/manager.ts';

export const FORWARDED_HEADER = FORWARD_HEADERS.by;
const PASS_HEADERS = ['authorization', 'x-api-key', 'content-type', 'accept', 'x-request-id', 'idempotency-key'];
const RETURN_HEADERS = ['location', 'retry-after', 'idempotent-replayed', 'content-disposition', 'cache-control'];

/**
 * `handOff: true`: the second hop of a cross-host migration (owner to target), allowed even for a request that
 * was forwarded to the owner; the target runs it itself (it never forwards a migration to itself on).
 */
export async function forwardToHost(ctx: AppContext, hosts: HostRegistry, hostId: string, selfId: string, options: { handOff?: boolean; clusterSecret?: string | undefined } = {}): Promise<void> {
  if (ctx.get(FORWARDED_HEADER) && options.handOff !== true) {
    throw new GatewayError('SHARD_UNAVAILABLE', `Session is owned by host ${hostId}, but this request was already forwarded once.`, { host: hostId });
  }
  const host = await hosts.get(hostId);
  if (host === null) throw new GatewayError('SHARD_UNAVAILABLE', `Session is owned by host ${hostId}, which is not reachable.`, { host: hostId });
  const headers: Record<string, string> = { [FORWARDED_HEADER]: selfId, 'x-request-id': ctx.state.reqId };
  for (const h of PASS_HEADERS) {
    const v = ctx.get(h);
    if (v) headers[h] = v;
  }
  const body = ctx.state.rawBody;
  const hasBody = body !== undefined && ctx.method !== 'GET' && ctx.method !== 'HEAD';
  if (hasBody) headers['content-type'] = 'application/json';
  else delete headers['content-type'];
  const text = hasBody ? JSON.stringify(body) : '';
  // Signed with CLUSTER_SECRET: the owner does not count the call again and knows the real client (docs/security.md).
  if (options.clusterSecret !== undefined) Object.assign(headers, signForwarded(options.clusterSecret, { method: ctx.method, url: ctx.originalUrl, by: selfId, clientIp: ctx.ip || 'unknown', body: text }));
  const controller = new AbortController();
  ctx.req.once('close', () => controller.abort());
  let res: Response;
  try {
    res = await fetch(new URL(ctx.originalUrl, host.url), {
      method: ctx.method,
      headers,
      ...(hasBody ? { body: text } : {}),
      signal: controller.signal,
      redirect: 'manual',
    });
  } catch (err) {
    throw new GatewayError('SHARD_UNAVAILABLE', `Forwarding to host ${hostId} failed: ${(err as Error).message}`, { host: hostId });
  }
  ctx.status = res.status;
  const type = res.headers.get('content-type');
  if (type) ctx.type = type;
  for (const h of RETURN_HEADERS) {
    const v = res.headers.get(h);
    if (v !== null) ctx.set(h, v);
  }
  ctx.set('x-wagw-served-by', hostId);
  if (type?.startsWith('text/event-stream') && res.body) {
    ctx.req.socket.setTimeout(0);
    ctx.body = Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
    return;
  }
  const buf = Buffer.from(await res.arrayBuffer());
  ctx.body = type?.includes('json') ? (JSON.parse(buf.toString('utf8')) as unknown) : buf;
}

/** Proxies a session-scoped call when another host owns the session; true when it did (the response is set). */
export type Forwarder = (ctx: AppContext, sessionId: string) => Promise<boolean>;

export function createForwarder(manager: Pick<SessionManager, 'ownership' | 'hostId'>, hosts: HostRegistry, clusterSecret?: string): Forwarder {
  return async (ctx, sessionId) => {
    const own = await manager.ownership(sessionId);
    if (own.kind !== 'foreign') return false;
    await forwardToHost(ctx, hosts, own.hostId, manager.hostId, { clusterSecret });
    return true;
  };
}

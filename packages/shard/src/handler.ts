/**
 * The shard's protocol handler. It owns no process: it takes `send` and `receive` so tests run it in-process,
 * and `main.ts` is a thin adapter over `process.send` / `process.on('message')`.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { EventLoopUtilization, ELDHistogram } from 'node:perf_hooks';
import {
  GatewayError,
  MAX_PING_DELAY_MS,
  PendingCalls,
  PROTOCOL_VERSION,
  ReplyBatcher,
  assertNever,
  createRootLogger,
  isRouterToShard,
  toErrorBody,
} from '@wagw/shared';
import type {
  CpuPoolStats,
  InitMessage,
  IpcReply,
  IpcRequest,
  IpcResult,
  Logger,
  PingResult,
  ShardEvent,
  ShardRequestBody,
  ShardRequestKind,
  ShardRequestResult,
  ShardStats,
  ShardToRouter,
  ShutdownResult,
  QrRenderResult,
  ReplyBatching,
} from '@wagw/shared';
import { CpuPool } from './cpu-pool.ts';
import { IpcOutbox } from './ipc-outbox.ts';
import type { RenderQrResult, RenderQrTask } from './qr.ts';
import type { ShardRequester } from './messaging/inbound.ts';
import { createSessionHost } from './sessions/setup.ts';
import type { SessionHostHandle } from './sessions/setup.ts';

/** What the handler needs from the CPU pool (the real one is `CpuPool`). */
export interface CpuPoolLike {
  stats(): CpuPoolStats;
  close(): Promise<void>;
  renderQr?(task: RenderQrTask): Promise<RenderQrResult>;
}

/**
 * How replies leave the handler (`ReplyBatcher` in @wagw/shared): `immediate` sends the replies of one
 * event-loop turn as one `replies` message (fewer pipe writes under load; the default, see docs/benchmarks.md),
 * `none` one message per reply.
 */
export type { ReplyBatching };

export interface ShardHandlerOptions {
  /**
   * Writes one message to the router. `onSent` runs once the message has left the process; false means the
   * channel is backed up (`process.send`'s answer): the outbox then holds further messages until every `onSent`
   * of what was written ran (ipc-outbox.ts).
   */
  send: (msg: ShardToRouter, onSent?: () => void) => boolean | void;
  /** Registers the listener for messages from the router. */
  receive: (listener: (msg: unknown) => void) => void;
  /** Ends the process (main.ts) or records the exit (tests). Called after the `exiting` message was sent. */
  exit: (code: number) => void;
  pid?: number;
  /** Logger factory, called once with the init message. Default: the pino root logger on stdout. */
  createLogger?: (init: InitMessage) => Logger;
  /** CPU pool factory, called once during init. Default: a piscina pool with `workerThreads` threads. */
  createCpuPool?: (init: InitMessage) => Promise<CpuPoolLike>;
  /** Sessions hosted; default: the session host's count. */
  sessionCount?: () => number;
  /**
   * Session host factory, called once during init. Default: a real SessionHost when `init.config.sessions` is
   * set, else none (session requests are then refused with SHARD_UNAVAILABLE).
   */
  createSessions?: (init: InitMessage, logger: Logger, emit: (event: ShardEvent) => void, request: ShardRequester) => Promise<SessionHostHandle | undefined>;
  replyBatching?: ReplyBatching;
  /** Requests the IPC outbox holds at most while the channel catches up; default 1,000. */
  outboxMaxRequests?: number;
}

export type { ShardRequester } from './messaging/inbound.ts';

const SHARD_REQUEST_TIMEOUT_MS = 30_000;

export type ShardHandlerState = 'waiting-init' | 'initialising' | 'ready' | 'draining' | 'closed';

export interface ShardHandler {
  readonly state: ShardHandlerState;
  /** The root logger once initialised. */
  readonly logger: Logger | undefined;
  /** A planned stop from outside the protocol (SIGTERM, parent gone): drain, close, send `exiting`, exit. */
  shutdown(reason: string, code?: number): Promise<void>;
}

/** Per-call context: the request id from the router and a child logger carrying it (created on first use). */
export interface CallContext {
  readonly reqId: string | undefined;
  readonly log: Logger;
}

const EXIT_FLUSH_TIMEOUT_MS = 1000;

export function createShardHandler(options: ShardHandlerOptions): ShardHandler {
  const pid = options.pid ?? process.pid;
  let sessions: SessionHostHandle | undefined;
  const sessionCount = options.sessionCount ?? (() => sessions?.host.count ?? 0);
  const startedAt = performance.now();

  let state: ShardHandlerState = 'waiting-init';
  let init: InitMessage | undefined;
  let logger: Logger | undefined;
  let pool: CpuPoolLike | undefined;
  let loopDelay: ELDHistogram | undefined;
  let lastElu: EventLoopUtilization | undefined;
  let inFlight = 0;
  let drainWaiters: (() => void)[] = [];
  let shutdownPromise: Promise<void> | undefined;
  let exitAfterReply: { code: number; reason: string } | undefined;

  // Every message to the router leaves through the outbox: bounded while the channel catches up.
  const outbox = new IpcOutbox((msg, onSent) => options.send(msg, onSent), options.outboxMaxRequests === undefined ? {} : { maxRequests: options.outboxMaxRequests });
  const send = (msg: ShardToRouter, onSent?: () => void): void => outbox.send(msg, onSent);
  const replies = new ReplyBatcher((msg) => send(msg), options.replyBatching ?? 'immediate');
  const reply = (msg: IpcReply): void => replies.reply(msg);
  const flush = (): void => replies.flush();

  const emit = (event: ShardEvent): void => outbox.event(event);

  // The shard's own calls to the router (inbound messages, getMessage): the same pending-call table as the
  // router's calls to it. The deadlines do not keep a shard alive whose parent is gone.
  const requests = new PendingCalls<{ kind: ShardRequestKind }>({
    timeoutError: (meta, timeoutMs) => new GatewayError('IPC_TIMEOUT', `The router did not answer ${meta.kind} in time.`, { kind: meta.kind, timeoutMs }),
    unrefTimers: true,
  });
  const request: ShardRequester = async <K extends ShardRequestKind>(body: ShardRequestBody<K>, timeoutMs = SHARD_REQUEST_TIMEOUT_MS) => {
    // The deadline covers the wait for room in a full outbox too: the caller gets the timeout it would get anyway.
    const deadline = Date.now() + timeoutMs;
    const slot = await outbox.room(deadline);
    if (slot === undefined) {
      throw new GatewayError('IPC_TIMEOUT', `The router did not answer ${body.kind} in time (the shard's IPC outbox stayed full).`, { kind: body.kind, timeoutMs });
    }
    return (await requests.open({ kind: body.kind }, Math.max(1, deadline - Date.now()), (id) => outbox.request({ kind: 'request', id, request: body as ShardRequestBody }, deadline, slot))) as ShardRequestResult<K>;
  };
  const settleRequest = (msg: IpcReply): void => {
    requests.settle(msg);
  };

  const finish = (code: number, reason: string): void => {
    flush();
    state = 'closed';
    loopDelay?.disable();
    let done = false;
    const exitOnce = (): void => {
      if (done) return;
      done = true;
      options.exit(code);
    };
    const fallback = setTimeout(exitOnce, EXIT_FLUSH_TIMEOUT_MS);
    fallback.unref();
    send({ kind: 'exiting', code, reason }, () => {
      clearTimeout(fallback);
      exitOnce();
    });
  };

  const handleInit = async (msg: InitMessage): Promise<void> => {
    if (state !== 'waiting-init') {
      logger?.warn({ shardIndex: msg.shardIndex }, 'duplicate init ignored');
      return;
    }
    state = 'initialising';
    if (msg.protocolVersion !== PROTOCOL_VERSION) {
      const error = new GatewayError('SHARD_UNAVAILABLE', `protocol version mismatch: router speaks ${msg.protocolVersion}, shard speaks ${PROTOCOL_VERSION}`, {
        reason: 'protocol-mismatch',
        routerVersion: msg.protocolVersion,
        shardVersion: PROTOCOL_VERSION,
      });
      send({ kind: 'init-failed', protocolVersion: PROTOCOL_VERSION, pid, error: error.toJSON(), retryable: false });
      state = 'waiting-init';
      return;
    }
    init = msg;
    if (options.replyBatching === undefined && msg.config.replyBatching !== undefined) replies.mode = msg.config.replyBatching;
    logger = (options.createLogger ?? defaultLogger)(msg);
    try {
      pool = await (options.createCpuPool ?? defaultPool)(msg);
    } catch (err) {
      logger.error({ err }, 'CPU pool failed to start');
      const error = new GatewayError('SHARD_UNAVAILABLE', `CPU pool failed to start: ${(err as Error).message}`, { reason: 'cpu-pool' });
      send({ kind: 'init-failed', protocolVersion: PROTOCOL_VERSION, pid, error: error.toJSON(), retryable: true });
      state = 'waiting-init';
      return;
    }
    try {
      sessions = await (options.createSessions ?? defaultSessions)(msg, logger, emit, request);
    } catch (err) {
      logger.error({ err }, 'session host failed to start');
      await pool.close().catch(() => undefined);
      const error = new GatewayError('SHARD_UNAVAILABLE', `session host failed to start: ${(err as Error).message}`, { reason: 'sessions' });
      send({ kind: 'init-failed', protocolVersion: PROTOCOL_VERSION, pid, error: error.toJSON(), retryable: true });
      state = 'waiting-init';
      return;
    }
    loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    lastElu = performance.eventLoopUtilization();
    state = 'ready';
    logger.info({ shardIndex: msg.shardIndex, hostId: msg.hostId, protocolVersion: PROTOCOL_VERSION }, 'shard ready');
    send({ kind: 'ready', protocolVersion: PROTOCOL_VERSION, pid });
  };

  const ping = async (req: IpcRequest<'ping'>): Promise<PingResult> => {
    const delay = req.delayMs ?? 0;
    if (!Number.isFinite(delay) || delay < 0 || delay > MAX_PING_DELAY_MS) {
      throw new GatewayError('VALIDATION_FAILED', `delayMs must be 0-${MAX_PING_DELAY_MS}`);
    }
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    return req.payload === undefined ? { pid } : { payload: req.payload, pid };
  };

  /** Reads the figures; the event-loop window (delay histogram, utilization) restarts only on `resetWindow`. */
  const stats = (resetWindow: boolean): ShardStats => {
    const mem = process.memoryUsage();
    const elu = performance.eventLoopUtilization(lastElu);
    const ms = (ns: number): number => (Number.isFinite(ns) ? Math.round(ns / 1e4) / 100 : 0);
    const eventLoop = loopDelay
      ? { lagP50Ms: ms(loopDelay.percentile(50)), lagP99Ms: ms(loopDelay.percentile(99)), lagMaxMs: ms(loopDelay.max), utilization: elu.utilization }
      : { lagP50Ms: 0, lagP99Ms: 0, lagMaxMs: 0, utilization: elu.utilization };
    if (resetWindow) {
      lastElu = performance.eventLoopUtilization();
      loopDelay?.reset();
    }
    return {
      shardIndex: init?.shardIndex ?? -1,
      pid,
      uptimeMs: Math.round(performance.now() - startedAt),
      sessions: sessionCount(),
      inFlight,
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external, arrayBuffers: mem.arrayBuffers },
      eventLoop,
      cpuPool: pool?.stats() ?? { threads: 0, queued: 0, completed: 0, utilization: 0 },
      ...(sessions === undefined
        ? {}
        : { sendQueue: sendQueueStats(sessions.host.governorStats()), loginGate: sessions.host.gateStats(), authDurable: sessions.host.durableStats() }),
      outbox: outbox.stats(),
    };
  };

  /** Waits until only `keep` requests are running (the shutdown request itself) or the deadline passes. */
  const drain = async (keep: number, deadlineMs: number): Promise<void> => {
    if (inFlight <= keep) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, deadlineMs);
      timer.unref();
      const check = (): void => {
        if (inFlight <= keep) {
          clearTimeout(timer);
          resolve();
        } else drainWaiters.push(check);
      };
      drainWaiters.push(check);
    });
  };

  const stop = async (reason: string, keep: number): Promise<ShutdownResult> => {
    const log = logger;
    state = 'draining';
    const running = inFlight - keep;
    log?.info({ reason, running }, 'shard draining');
    // Leave time for the reply and the exit within the router's stop timeout.
    await drain(keep, Math.max(50, Math.floor((init?.config.stopTimeoutMs ?? 10_000) / 3)));
    const drained = running - Math.max(0, inFlight - keep);
    if (sessions) {
      // Every session flushes its auth state and closes without logging out; the router then releases leases.
      const stopped = await sessions.host.stopAll(`shard stopping: ${reason}`);
      log?.info({ sessions: stopped }, 'sessions stopped');
      await sessions.close().catch((err: unknown) => log?.warn({ err }, 'blob store close failed'));
    }
    try {
      await pool?.close();
    } catch (err) {
      log?.warn({ err }, 'CPU pool close failed');
    }
    log?.info({ reason, drained }, 'shard stopped');
    return { drained };
  };

  const shutdownRequest = async (req: IpcRequest<'shutdown'>): Promise<ShutdownResult> => {
    if (shutdownPromise) {
      await shutdownPromise;
      return { drained: 0 };
    }
    let result: ShutdownResult = { drained: 0 };
    shutdownPromise = stop(req.reason, 1).then((r) => {
      result = r;
    });
    await shutdownPromise;
    // handleRequest queues the reply, then finish() flushes it right before `exiting`.
    exitAfterReply = { code: 0, reason: `shutdown: ${req.reason}` };
    return result;
  };

  const host = (): SessionHostHandle['host'] => {
    if (!sessions) throw new GatewayError('SHARD_UNAVAILABLE', 'This shard does not host sessions.');
    return sessions.host;
  };

  const renderQr = async (req: IpcRequest<'qr.render'>): Promise<QrRenderResult> => {
    if (!pool?.renderQr) throw new GatewayError('SHARD_UNAVAILABLE', 'This shard has no QR renderer.');
    const task: RenderQrTask = { text: req.text, format: req.format };
    if (req.width !== undefined) task.width = req.width;
    if (req.margin !== undefined) task.margin = req.margin;
    const out = await pool.renderQr(task);
    return out.format === 'png'
      ? { contentType: out.contentType, encoding: 'base64', data: Buffer.from(out.data).toString('base64') }
      : { contentType: out.contentType, encoding: 'utf8', data: out.data };
  };

  const dispatch = async (req: IpcRequest, ctx: CallContext): Promise<IpcResult<IpcRequest['kind']>> => {
    switch (req.kind) {
      case 'ping':
        return await ping(req);
      case 'stats': {
        const gc = (globalThis as { gc?: () => void }).gc;
        if (req.gc === true && typeof gc === 'function') gc();
        return stats(req.resetWindow === true);
      }
      case 'shutdown':
        ctx.log.info({ reason: req.reason }, 'shutdown requested');
        return await shutdownRequest(req);
      case 'session.start':
        return await host().start({ sessionId: req.sessionId, epoch: req.epoch, validUntil: req.validUntil, reason: req.reason });
      case 'session.stop':
        return { stopped: await host().stop(req.sessionId, req.reason) };
      case 'session.abort':
        return { aborted: host().abort(req.sessionId, req.reason) };
      case 'session.logout':
        return { loggedOut: await host().logout(req.sessionId) };
      case 'session.pairing-code':
        return { code: await host().pairingCode(req.sessionId, req.phone) };
      case 'session.list':
        return { sessions: host().list() };
      case 'leases.extend':
        return { unknown: host().extend(req.leases) };
      case 'qr.render':
        return await renderQr(req);
      case 'message.send':
        return await host().send(req, req.reqId);
      case 'session.action':
        return await host().action(req.sessionId, req.action);
      case 'group.action':
        return await host().groupAction(req.sessionId, req.action);
      default:
        return assertNever(req, 'request kind');
    }
  };

  const handleRequest = async (req: IpcRequest): Promise<void> => {
    const log = logger;
    let child: Logger | undefined;
    const ctx: CallContext = {
      reqId: req.reqId,
      get log(): Logger {
        if (!log) throw new Error('logger used before init');
        child ??= req.reqId === undefined ? log : log.child({ reqId: req.reqId });
        return child;
      },
    };
    if (state !== 'ready' && !(req.kind === 'shutdown' && state === 'draining')) {
      const error =
        state === 'draining' || state === 'closed'
          ? new GatewayError('SHUTTING_DOWN', 'The shard is stopping.')
          : new GatewayError('SHARD_UNAVAILABLE', 'The shard has not finished its handshake.');
      reply({ kind: 'reply', id: req.id, ok: false, error: error.toJSON() });
      return;
    }
    inFlight++;
    if (log?.isLevelEnabled('debug')) ctx.log.debug({ kind: req.kind, id: req.id }, 'ipc request');
    try {
      const value = await dispatch(req, ctx);
      reply({ kind: 'reply', id: req.id, ok: true, value });
      if (req.kind === 'shutdown' && exitAfterReply) finish(exitAfterReply.code, exitAfterReply.reason);
    } catch (err) {
      const error = toErrorBody(err);
      if (error.code === 'INTERNAL') ctx.log.error({ err, kind: req.kind, id: req.id }, 'ipc request failed');
      else ctx.log.info({ code: error.code, kind: req.kind, id: req.id }, 'ipc request refused');
      reply({ kind: 'reply', id: req.id, ok: false, error });
    } finally {
      inFlight--;
      if (drainWaiters.length > 0) {
        const waiters = drainWaiters;
        drainWaiters = [];
        for (const w of waiters) w();
      }
    }
  };

  options.receive((msg) => {
    if (!isRouterToShard(msg)) {
      logger?.warn({ msg }, 'malformed message from router ignored');
      return;
    }
    if (msg.kind === 'init') {
      void handleInit(msg);
      return;
    }
    if (msg.kind === 'reply') {
      settleRequest(msg);
      return;
    }
    void handleRequest(msg);
  });

  return {
    get state() {
      return state;
    },
    get logger() {
      return logger;
    },
    async shutdown(reason: string, code = 0): Promise<void> {
      if (state === 'closed') return;
      if (shutdownPromise) {
        await shutdownPromise;
        return;
      }
      shutdownPromise = stop(reason, 0).then(() => undefined);
      await shutdownPromise;
      finish(code, reason);
    },
  };
}

function sendQueueStats(all: readonly { stats: { depth: number; inFlight: number } }[]): { depth: number; inFlight: number } {
  let depth = 0;
  let inFlight = 0;
  for (const g of all) {
    depth += g.stats.depth;
    inFlight += g.stats.inFlight;
  }
  return { depth, inFlight };
}

function defaultLogger(init: InitMessage): Logger {
  return createRootLogger({ proc: 'shard', level: init.config.logLevel, shard: init.shardIndex });
}

async function defaultSessions(init: InitMessage, logger: Logger, emit: (event: ShardEvent) => void, request: ShardRequester): Promise<SessionHostHandle | undefined> {
  if (init.config.sessions === undefined) return undefined;
  return await createSessionHost(init, init.config.sessions, logger, emit, request);
}

async function defaultPool(init: InitMessage): Promise<CpuPoolLike> {
  return await CpuPool.create({ threads: init.config.workerThreads });
}

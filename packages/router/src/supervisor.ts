/**
 * ShardSupervisor: forks the shard processes, runs the handshake, routes calls with deadlines (one
 * `PendingCalls` table per shard, the same machinery the shard uses for its calls to the router), rejects every
 * pending call at once when a shard exits, restarts crashed shards with exponential backoff and gives up on a
 * crash loop, tells planned stops from crashes (`ProcessEnding`), and grows or shrinks the shard count at run
 * time. See docs/protocol.md for the lifecycle. Over 500 lines, one file on purpose: the pool, the restart
 * policy and each process's handshake and stop sequence read and write the same slot state under one generation
 * counter, and the ordering between them (a stop racing a crash, a restart racing a scale-down) is the hard part;
 * a split along pool/process lines broke the supervisor's tests in a past attempt (#11). The request/reply
 * machinery already lives in shared/src/ipc-peer.ts (docs/architecture.md "Decisions").
 */
import { fork } from 'node:child_process';
import type { ChildProcess, Serializable } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { GatewayError, PROTOCOL_VERSION, PendingCalls, assertNever, isShardToRouter, shardEnvironment, toErrorBody } from '@wagw/shared';
import type {
  ErrorCode,
  GatewayConfig,
  IpcReply,
  IpcRequestBody,
  IpcResult,
  Logger,
  RequestKind,
  ShardEvent,
  ShardRequestBody,
  ShardRequestKind,
  ShardRequestResult,
  ShardInitConfig,
  ShardSessionsConfig,
  ShardToRouter,
} from '@wagw/shared';

export type ShardState = 'starting' | 'ready' | 'restarting' | 'stopping' | 'stopped' | 'failed';

export interface ShardExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** ISO time of the exit. */
  at: string;
  /** True when the supervisor asked for it (shutdown, scale-down, give-up); false for a crash. */
  planned: boolean;
  /** Why: the shard's own `exiting` reason, a handshake failure, or the exit code/signal. */
  reason: string;
}

export interface ShardInfo {
  index: number;
  state: ShardState;
  pid: number | undefined;
  /** Times the supervisor restarted this shard after a crash. */
  restarts: number;
  lastExit: ShardExit | undefined;
  /** Set when state is `failed`: why the supervisor gave up. */
  failureReason: string | undefined;
  /** ISO time the current process finished its handshake. */
  readySince: string | undefined;
  /** Calls waiting for a reply. */
  pending: number;
}

export interface CallOptions {
  /** Deadline of this call; default `config.shards.callTimeoutMs`. */
  timeoutMs?: number;
  /** The HTTP request id; the shard logs the call with it. */
  requestId?: string;
}

export type CallOutcome = 'ok' | 'error' | 'timeout' | 'crashed';

export interface SupervisorHooks {
  /**
   * Runs before a planned stop of shard `index` (scale-down or shutdown) while the shard still serves calls.
   * The session manager migrates the shard's sessions to the other shards here. Errors are logged; the stop goes on.
   */
  beforeStop?: (index: number, reason: string) => Promise<void>;
  onStateChange?: (info: ShardInfo) => void;
  onEvent?: (index: number, event: ShardEvent) => void;
  /**
   * Answers a shard's request (`ShardRequestMap`); the reply goes back once the promise settles. The router passes
   * `answerShardRequest` over its typed `ShardRequestHandlers` (messages/ingest.ts).
   */
  onRequest?: (index: number, request: ShardRequestBody) => Promise<ShardRequestResult<ShardRequestKind>>;
  /** Every settled call, for metrics. */
  onCallDone?: (kind: RequestKind, index: number, seconds: number, outcome: CallOutcome) => void;
}

export type SupervisorConfig = Pick<GatewayConfig, 'shards' | 'hostId' | 'nodeEnv' | 'logLevel' | 'dataDir'>;

export interface ShardSupervisorOptions {
  config: SupervisorConfig;
  logger: Logger;
  hooks?: SupervisorHooks;
  /**
   * The shard entry file, passed in by the composition root (main.ts resolves `@wagw/shard/main`): the router
   * never imports the shard package. Tests point it at misbehaving fixtures.
   */
  entry: string;
  /** Node flags for the shards (default: none). */
  execArgv?: string[];
  /** IPC serialization (see docs/benchmarks.md for why `json` is the default). */
  serialization?: 'json' | 'advanced';
  /** Where the shards' stdout/stderr go (default: the router's). */
  stdio?: 'inherit' | 'pipe' | 'ignore';
  /** Called with each forked child (tests read its piped output). */
  onFork?: (index: number, child: ChildProcess) => void;
  /** Protocol version announced in `init`; only tests change it. */
  protocolVersion?: number;
  /** The shards' environment; default `shardEnvironment()`: the router's, without any gateway variable or secret. */
  env?: Record<string, string>;
  /** Reply batching in the shards (see docs/benchmarks.md); default: the shard's default. */
  replyBatching?: 'immediate' | 'none';
  /** Session hosting settings sent in `init` (blob store, WhatsApp endpoint, login cap); absent: no sessions. */
  sessions?: ShardSessionsConfig;
}

/** What the supervisor keeps per pending call (the ids, deadlines and settling are `PendingCalls`'). */
interface CallMeta {
  kind: RequestKind;
}

/**
 * What the exit of a slot's current process leads to, decided before that exit:
 * - `crash` (the default while it runs): pending calls fail with SHARD_CRASHED, restart with backoff or give
 *   up at the crash-loop cap;
 * - `give-up` (protocol mismatch, non-retryable init failure): `failed`, no restart;
 * - `planned` (scale-down, shutdown, killAll): `stopped`, pending calls fail with SHARD_UNAVAILABLE. A planned
 *   stop wins over a give-up decided before or after it.
 */
type ProcessEnding = { kind: 'crash' } | { kind: 'give-up'; reason: string } | { kind: 'planned'; reason: string };

const CRASH: ProcessEnding = { kind: 'crash' };

/** A give-up never replaces a planned stop. */
function giveUp(slot: { ending: ProcessEnding }, reason: string): void {
  if (slot.ending.kind !== 'planned') slot.ending = { kind: 'give-up', reason };
}

interface Slot {
  readonly index: number;
  state: ShardState;
  child: ChildProcess | undefined;
  generation: number;
  restarts: number;
  /** Crash times within the crash-loop window. */
  crashes: number[];
  lastExit: ShardExit | undefined;
  failureReason: string | undefined;
  readySince: string | undefined;
  /** Calls to the current process (one table per slot: a restart starts with none; ids keep growing). */
  pending: PendingCalls<CallMeta>;
  handshakeTimer: NodeJS.Timeout | undefined;
  restartTimer: NodeJS.Timeout | undefined;
  /** What the exit of the current process leads to, decided before it (see `ProcessEnding`). */
  ending: ProcessEnding;
  /** Why the current process is going away, when known before its exit. */
  exitReason: string | undefined;
  exited: Promise<void>;
  markExited: () => void;
  /** Resolved when the current start attempt settles (ready, or failed handshake / exit). */
  attempt: Promise<void>;
  settleAttempt: () => void;
  /** The stop sequence running for `child`, if any. */
  stopSequence: { child: ChildProcess | undefined; done: Promise<void> } | undefined;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export class ShardSupervisor {
  readonly #config: SupervisorConfig;
  readonly #log: Logger;
  readonly #hooks: SupervisorHooks;
  readonly #entry: string;
  readonly #execArgv: string[];
  readonly #serialization: 'json' | 'advanced';
  readonly #stdio: 'inherit' | 'pipe' | 'ignore';
  readonly #onFork: ((index: number, child: ChildProcess) => void) | undefined;
  readonly #protocolVersion: number;
  readonly #replyBatching: 'immediate' | 'none' | undefined;
  readonly #sessions: ShardSessionsConfig | undefined;
  readonly #env: Record<string, string>;
  readonly #slots: Slot[] = [];
  #stopping = false;
  #scaling: Promise<void> = Promise.resolve();
  readonly #watchers = new Set<() => void>();

  constructor(options: ShardSupervisorOptions) {
    this.#config = options.config;
    this.#log = options.logger.child({ component: 'supervisor' });
    this.#hooks = options.hooks ?? {};
    this.#entry = options.entry;
    this.#execArgv = options.execArgv ?? [];
    this.#serialization = options.serialization ?? 'json';
    this.#stdio = options.stdio ?? 'inherit';
    this.#onFork = options.onFork;
    this.#protocolVersion = options.protocolVersion ?? PROTOCOL_VERSION;
    this.#replyBatching = options.replyBatching;
    this.#sessions = options.sessions;
    this.#env = options.env ?? shardEnvironment();
  }

  /** Forks `config.shards.count` shards and waits until each one's first start attempt has settled. */
  async start(): Promise<ShardInfo[]> {
    await this.setCount(this.#config.shards.count);
    return this.list();
  }

  get count(): number {
    return this.#slots.length;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  list(): ShardInfo[] {
    return this.#slots.map((s) => this.#info(s));
  }

  info(index: number): ShardInfo | undefined {
    const slot = this.#slots[index];
    return slot ? this.#info(slot) : undefined;
  }

  readyCount(): number {
    let n = 0;
    for (const s of this.#slots) if (s.state === 'ready') n++;
    return n;
  }

  pendingCount(): number {
    let n = 0;
    for (const s of this.#slots) n += s.pending.size;
    return n;
  }

  /** Resolves once `predicate(list())` holds (checked on every state change), or rejects after `timeoutMs`. */
  async waitFor(predicate: (shards: ShardInfo[]) => boolean, timeoutMs: number): Promise<ShardInfo[]> {
    if (predicate(this.list())) return this.list();
    return await new Promise<ShardInfo[]>((resolve, reject) => {
      const check = (): void => {
        if (!predicate(this.list())) return;
        clearTimeout(timer);
        this.#watchers.delete(check);
        resolve(this.list());
      };
      const timer = setTimeout(() => {
        this.#watchers.delete(check);
        reject(new Error(`supervisor: condition not met within ${timeoutMs} ms: ${JSON.stringify(this.list())}`));
      }, timeoutMs);
      this.#watchers.add(check);
    });
  }

  /**
   * Sends one request to shard `index` and resolves with its typed result. Rejects with SHARD_UNAVAILABLE
   * (no such shard, or not ready), SHUTTING_DOWN, IPC_TIMEOUT, SHARD_CRASHED (the shard exited first), or
   * the shard's own error rebuilt from `{code, message, details}`.
   */
  call<K extends RequestKind>(index: number, request: IpcRequestBody<K>, options: CallOptions = {}): Promise<IpcResult<K>> {
    if (this.#stopping) return Promise.reject(new GatewayError('SHUTTING_DOWN', undefined, { shard: index }));
    const slot = this.#slots[index];
    if (!slot) return Promise.reject(new GatewayError('SHARD_UNAVAILABLE', `No shard ${index} on this host.`, { shard: index }));
    if (slot.state !== 'ready') {
      return Promise.reject(new GatewayError('SHARD_UNAVAILABLE', undefined, { shard: index, state: slot.state }));
    }
    return this.#send(slot, request as IpcRequestBody, options.timeoutMs ?? this.#config.shards.callTimeoutMs, options.requestId) as Promise<IpcResult<K>>;
  }

  /** Changes the number of shards: forks new ones, or stops the highest indexes (after `beforeStop`). */
  async setCount(count: number): Promise<ShardInfo[]> {
    if (!Number.isInteger(count) || count < 0) throw new GatewayError('VALIDATION_FAILED', 'count must be a non-negative integer');
    const run = this.#scaling.then(async () => {
      if (this.#stopping) throw new GatewayError('SHUTTING_DOWN');
      if (count > this.#slots.length) {
        const added: Slot[] = [];
        for (let i = this.#slots.length; i < count; i++) {
          const slot = this.#newSlot(i);
          this.#slots.push(slot);
          added.push(slot);
          this.#spawn(slot);
        }
        this.#log.info({ count, added: added.length }, 'shards starting');
        await Promise.all(added.map((s) => s.attempt));
      } else if (count < this.#slots.length) {
        const removed = this.#slots.slice(count);
        this.#log.info({ count, removed: removed.length }, 'shards scaling down');
        await Promise.all(removed.map((s) => this.#stopSlot(s, 'scale down')));
        this.#slots.length = count;
        this.#notify();
      }
    });
    this.#scaling = run.catch(() => undefined);
    await run;
    return this.list();
  }

  /** Starts a `failed` or `stopped` shard again, with a fresh crash-loop count. */
  restart(index: number): void {
    const slot = this.#slots[index];
    if (!slot) throw new GatewayError('SHARD_UNAVAILABLE', `No shard ${index} on this host.`, { shard: index });
    if (this.#stopping) throw new GatewayError('SHUTTING_DOWN');
    if (slot.state !== 'failed' && slot.state !== 'stopped') throw new GatewayError('CONFLICT', `Shard ${index} is ${slot.state}.`);
    slot.crashes = [];
    slot.failureReason = undefined;
    this.#spawn(slot);
  }

  /** Planned stop of every shard: `beforeStop`, `shutdown` request, SIGTERM, then SIGKILL within `stopTimeoutMs`. */
  async stop(reason = 'router stopping'): Promise<void> {
    // Does not wait for a scaling step in progress: its new shards are in #slots already and get stopped here
    // (their first attempt then settles), and a step not yet begun refuses to run.
    this.#stopping = true;
    await Promise.all(this.#slots.map((s) => this.#stopSlot(s, reason)));
  }

  /** Last resort (shutdown deadline passed): SIGKILL every child now. */
  killAll(): void {
    this.#stopping = true;
    for (const s of this.#slots) {
      if (s.restartTimer) clearTimeout(s.restartTimer);
      if (s.ending.kind !== 'planned') s.ending = { kind: 'planned', reason: 'killed' };
      s.child?.kill('SIGKILL');
    }
  }

  // -------------------------------------------------------------------------------------------------------

  #newSlot(index: number): Slot {
    const exited = deferred();
    const attempt = deferred();
    exited.resolve();
    return {
      index,
      state: 'starting',
      child: undefined,
      generation: 0,
      restarts: 0,
      crashes: [],
      lastExit: undefined,
      failureReason: undefined,
      readySince: undefined,
      pending: this.#pendingCalls(index),
      handshakeTimer: undefined,
      restartTimer: undefined,
      ending: CRASH,
      exitReason: undefined,
      exited: exited.promise,
      markExited: exited.resolve,
      attempt: attempt.promise,
      settleAttempt: attempt.resolve,
      stopSequence: undefined,
    };
  }

  #info(s: Slot): ShardInfo {
    return {
      index: s.index,
      state: s.state,
      pid: s.child?.pid,
      restarts: s.restarts,
      lastExit: s.lastExit,
      failureReason: s.failureReason,
      readySince: s.readySince,
      pending: s.pending.size,
    };
  }

  #setState(slot: Slot, state: ShardState): void {
    if (slot.state === state) return;
    slot.state = state;
    this.#hooks.onStateChange?.(this.#info(slot));
    this.#notify();
  }

  #notify(): void {
    for (const w of [...this.#watchers]) w();
  }

  #spawn(slot: Slot): void {
    slot.generation++;
    const generation = slot.generation;
    slot.restartTimer = undefined;
    slot.ending = CRASH;
    slot.exitReason = undefined;
    slot.readySince = undefined;
    const exited = deferred();
    slot.exited = exited.promise;
    slot.markExited = exited.resolve;
    const attempt = deferred();
    slot.attempt = attempt.promise;
    slot.settleAttempt = attempt.resolve;
    this.#setState(slot, 'starting');

    const startedAt = performance.now();
    let child: ChildProcess;
    try {
      child = fork(this.#entry, [], {
        execPath: process.execPath,
        execArgv: this.#execArgv,
        env: this.#env,
        serialization: this.#serialization,
        stdio: ['ignore', this.#stdio, this.#stdio, 'ipc'],
      });
    } catch (err) {
      this.#log.error({ err, shard: slot.index }, 'shard fork failed');
      slot.exitReason = `fork failed: ${(err as Error).message}`;
      this.#onExit(slot, generation, null, null);
      return;
    }
    slot.child = child;
    this.#onFork?.(slot.index, child);
    const current = (): boolean => slot.generation === generation;
    child.on('message', (msg: unknown) => {
      if (!current()) return;
      // A throw here would end the router (and every shard with it): a bad message is logged and dropped.
      try {
        this.#onMessage(slot, msg, startedAt);
      } catch (err) {
        this.#log.error({ err, shard: slot.index, kind: kindOf(msg) }, 'message from shard failed; ignored');
      }
    });
    child.on('error', (err) => {
      // Spawn failures and sends on a closed channel; the exit that follows does the accounting.
      this.#log.warn({ err, shard: slot.index }, 'shard process error');
      if (child.pid === undefined && current()) {
        slot.exitReason = `spawn failed: ${err.message}`;
        this.#onExit(slot, generation, null, null);
      }
    });
    child.on('disconnect', () => {
      // The channel is gone: nobody will answer. Fail the pending calls now rather than at the exit.
      if (!current()) return;
      this.#rejectAll(slot, slot.ending.kind === 'planned' ? 'SHARD_UNAVAILABLE' : 'SHARD_CRASHED');
    });
    child.on('exit', (code, signal) => {
      if (current()) this.#onExit(slot, generation, code, signal);
    });

    slot.handshakeTimer = setTimeout(() => {
      slot.handshakeTimer = undefined;
      slot.exitReason = `handshake timed out after ${this.#config.shards.readyTimeoutMs} ms`;
      this.#log.error({ shard: slot.index, pid: child.pid }, 'shard handshake timed out');
      child.kill('SIGKILL');
    }, this.#config.shards.readyTimeoutMs);

    const init: ShardInitConfig = {
      nodeEnv: this.#config.nodeEnv,
      logLevel: this.#config.logLevel,
      dataDir: this.#config.dataDir,
      maxSessions: this.#config.shards.maxSessions,
      workerThreads: this.#config.shards.workerThreads,
      callTimeoutMs: this.#config.shards.callTimeoutMs,
      stopTimeoutMs: this.#config.shards.stopTimeoutMs,
    };
    if (this.#replyBatching !== undefined) init.replyBatching = this.#replyBatching;
    if (this.#sessions !== undefined) init.sessions = this.#sessions;
    child.send({
      kind: 'init',
      protocolVersion: this.#protocolVersion,
      shardIndex: slot.index,
      hostId: this.#config.hostId,
      config: init,
    } satisfies Serializable);
  }

  #onMessage(slot: Slot, raw: unknown, startedAt: number): void {
    if (!isShardToRouter(raw)) {
      this.#log.warn({ shard: slot.index, kind: kindOf(raw) }, 'malformed message from shard ignored');
      return;
    }
    const msg: ShardToRouter = raw;
    switch (msg.kind) {
      case 'reply':
        this.#settle(slot, msg);
        return;
      case 'replies':
        for (const r of msg.replies) this.#settle(slot, r);
        return;
      case 'ready': {
        if (slot.state !== 'starting') return;
        this.#clearHandshake(slot);
        if (msg.protocolVersion !== this.#protocolVersion) {
          const reason = `protocol version mismatch: router speaks ${this.#protocolVersion}, shard speaks ${msg.protocolVersion}`;
          giveUp(slot, reason);
          slot.exitReason = reason;
          slot.child?.kill('SIGKILL');
          return;
        }
        slot.readySince = new Date().toISOString();
        this.#log.info({ shard: slot.index, pid: msg.pid, ms: Math.round(performance.now() - startedAt) }, 'shard ready');
        this.#setState(slot, 'ready');
        slot.settleAttempt();
        return;
      }
      case 'init-failed': {
        this.#clearHandshake(slot);
        const reason = `init failed: ${msg.error.message}`;
        this.#log.error({ shard: slot.index, error: msg.error, retryable: msg.retryable }, 'shard init failed');
        slot.exitReason = reason;
        if (!msg.retryable) giveUp(slot, reason);
        slot.child?.kill('SIGKILL');
        return;
      }
      case 'event':
        this.#hooks.onEvent?.(slot.index, msg.event);
        return;
      case 'exiting':
        slot.exitReason ??= msg.reason;
        return;
      case 'request':
        this.#answer(slot, msg.id, msg.request);
        return;
      default:
        assertNever(msg, 'shard message');
    }
  }

  /** Runs a shard's request through `hooks.onRequest` and sends the reply to the same child process. */
  #answer(slot: Slot, id: number, request: ShardRequestBody): void {
    const child = slot.child;
    const hook = this.#hooks.onRequest;
    const work = hook === undefined ? Promise.reject(new GatewayError('SHARD_UNAVAILABLE', `The router does not handle ${request.kind}.`)) : hook(slot.index, request);
    work.then(
      (value) => {
        if (child?.connected === true) child.send({ kind: 'reply', id, ok: true, value: value ?? null } as Serializable);
      },
      (err: unknown) => {
        const error = toErrorBody(err);
        if (error.code === 'INTERNAL') this.#log.error({ err, shard: slot.index, kind: request.kind }, 'shard request failed');
        if (child?.connected === true) child.send({ kind: 'reply', id, ok: false, error } as Serializable);
      },
    );
  }

  #pendingCalls(index: number): PendingCalls<CallMeta> {
    return new PendingCalls<CallMeta>({
      timeoutError: (meta, timeoutMs) => new GatewayError('IPC_TIMEOUT', undefined, { shard: index, kind: meta.kind, timeoutMs }),
      onDone: (meta, outcome, startedAt) =>
        this.#hooks.onCallDone?.(meta.kind, index, (performance.now() - startedAt) / 1000, outcome === 'closed' ? 'crashed' : outcome),
    });
  }

  #settle(slot: Slot, reply: IpcReply): void {
    if (!slot.pending.settle(reply)) this.#log.debug({ shard: slot.index, id: reply.id }, 'late reply ignored');
  }

  #send(slot: Slot, request: IpcRequestBody, timeoutMs: number, reqId: string | undefined): Promise<unknown> {
    const child = slot.child;
    if (!child?.connected) {
      return Promise.reject(new GatewayError('SHARD_UNAVAILABLE', undefined, { shard: slot.index, state: slot.state }));
    }
    return slot.pending.open({ kind: request.kind }, timeoutMs, (id) => {
      child.send((reqId === undefined ? { ...request, id } : { ...request, id, reqId }) as Serializable);
    });
  }

  #rejectAll(slot: Slot, code: ErrorCode): void {
    const calls = slot.pending.size;
    if (calls === 0) return;
    this.#log.warn({ shard: slot.index, calls, code }, 'pending calls failed: shard exited');
    slot.pending.rejectAll((meta) => new GatewayError(code, code === 'SHARD_CRASHED' ? undefined : 'The shard stopped.', { shard: slot.index, kind: meta.kind }));
  }

  #clearHandshake(slot: Slot): void {
    if (slot.handshakeTimer) clearTimeout(slot.handshakeTimer);
    slot.handshakeTimer = undefined;
  }

  #onExit(slot: Slot, generation: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.generation !== generation || (slot.child === undefined && slot.state !== 'starting')) return;
    this.#clearHandshake(slot);
    const ending = slot.ending;
    const planned = ending.kind === 'planned';
    this.#rejectAll(slot, planned ? 'SHARD_UNAVAILABLE' : 'SHARD_CRASHED');
    const pid = slot.child?.pid;
    slot.child = undefined;
    const how = signal !== null ? `killed by ${signal}` : `exited with code ${code ?? 'unknown'}`;
    const reason = slot.exitReason !== undefined ? `${slot.exitReason} (${how})` : how;
    slot.lastExit = { code, signal, at: new Date().toISOString(), planned, reason };
    slot.markExited();
    slot.settleAttempt();

    if (ending.kind === 'planned') {
      this.#log.info({ shard: slot.index, pid, code, signal, reason: ending.reason }, 'shard stopped');
      this.#setState(slot, 'stopped');
      return;
    }
    if (ending.kind === 'give-up') {
      slot.failureReason = ending.reason;
      this.#log.error({ shard: slot.index, pid, reason: ending.reason }, 'shard failed; not restarting');
      this.#setState(slot, 'failed');
      return;
    }
    if (this.#stopping) {
      this.#setState(slot, 'stopped');
      return;
    }
    const now = Date.now();
    const { crashLoopMax, crashLoopWindowMs, restartBackoffMs, restartBackoffMaxMs } = this.#config.shards;
    slot.crashes = slot.crashes.filter((t) => now - t < crashLoopWindowMs);
    slot.crashes.push(now);
    if (slot.crashes.length >= crashLoopMax) {
      slot.failureReason = `crash loop: ${slot.crashes.length} crashes within ${crashLoopWindowMs} ms; last: ${reason}`;
      this.#log.error({ shard: slot.index, pid, code, signal, reason: slot.failureReason }, 'shard crash loop; giving up');
      this.#setState(slot, 'failed');
      return;
    }
    const delay = Math.min(restartBackoffMs * 2 ** (slot.crashes.length - 1), restartBackoffMaxMs);
    this.#log.error({ shard: slot.index, pid, code, signal, reason, restartInMs: delay }, 'shard crashed; restarting');
    this.#setState(slot, 'restarting');
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (this.#stopping || slot.state !== 'restarting') return;
      slot.restarts++;
      this.#spawn(slot);
    }, delay);
  }

  /** Stops one shard; concurrent stops of the same process share one sequence. */
  #stopSlot(slot: Slot, reason: string): Promise<void> {
    const child = slot.child;
    if (slot.stopSequence && slot.stopSequence.child === child) return slot.stopSequence.done;
    const done = this.#stopSlotOnce(slot, reason);
    slot.stopSequence = { child, done };
    return done;
  }

  async #stopSlotOnce(slot: Slot, reason: string): Promise<void> {
    if (slot.restartTimer) {
      clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
    }
    const child = slot.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      if (slot.state !== 'failed') this.#setState(slot, 'stopped');
      return;
    }
    if (slot.state === 'ready' && this.#hooks.beforeStop) {
      try {
        await this.#hooks.beforeStop(slot.index, reason);
      } catch (err) {
        this.#log.error({ err, shard: slot.index }, 'beforeStop hook failed; stopping anyway');
      }
    }
    if (slot.child !== child) return; // it exited meanwhile and was handled (or restarted)
    // A channel that closed on its own means the process is dying: let its exit count as the crash it is.
    if (child.connected || slot.state === 'starting') slot.ending = { kind: 'planned', reason };
    const wasReady = slot.state === 'ready';
    this.#setState(slot, 'stopping');
    this.#clearHandshake(slot);
    const { stopTimeoutMs } = this.#config.shards;
    if (wasReady && child.connected) {
      // The shard drains, replies, says `exiting` and exits 0. Its reply is not needed.
      this.#send(slot, { kind: 'shutdown', reason }, stopTimeoutMs, undefined).catch(() => undefined);
    } else {
      child.kill('SIGTERM');
    }
    const exited = slot.exited;
    if (await settlesWithin(exited, stopTimeoutMs / 2)) return;
    this.#log.warn({ shard: slot.index, pid: child.pid }, 'shard slow to stop; SIGTERM');
    child.kill('SIGTERM');
    if (await settlesWithin(exited, stopTimeoutMs / 2)) return;
    this.#log.error({ shard: slot.index, pid: child.pid }, 'shard did not stop; SIGKILL');
    child.kill('SIGKILL');
    await exited;
  }
}

/** The `kind` of a message for a log line (never the message itself: it may carry message data). */
function kindOf(msg: unknown): string | undefined {
  const kind = typeof msg === 'object' && msg !== null ? (msg as { kind?: unknown }).kind : undefined;
  return typeof kind === 'string' ? kind.slice(0, 40) : undefined;
}

async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

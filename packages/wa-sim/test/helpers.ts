// Test helpers: real Baileys 7 sockets against the simulator, in-memory auth, predicate waits.
import { addTransactionCapability, initAuthCreds, makeWASocket, WA_CERT_DETAILS } from '@whiskeysockets/baileys';
import type { AuthenticationCreds, ConnectionState, WAMessage, WAMessageUpdate, WASocket } from '@whiskeysockets/baileys';
import { pino } from 'pino';
import { makeMemoryKeyStore, WaSimulator } from '../src/index.ts';
import type { SimPhone, WaSimulatorOptions } from '../src/index.ts';

/**
 * Two Baileys 7.0.0-rc14 timer leaks keep a finished test process alive:
 * - every prekey upload races `setTimeout(reject, UPLOAD_TIMEOUT = 30 s)` and never clears it (uploadPreKeys);
 * - `end()` removes the ws 'close' listeners before closing, so a query still waiting for its answer when the
 *   socket ends (e.g. on a stream:error) keeps its 60 s `defaultQueryTimeoutMs` timer.
 * Unref exactly those durations so test processes exit as soon as their sockets are closed.
 */
const realSetTimeout = globalThis.setTimeout;
globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
  const t = realSetTimeout(fn, ms, ...args);
  if (ms === 30_000 || ms === 60_000) t.unref();
  return t;
}) as typeof setTimeout;

export const logger = pino({ level: process.env.WA_SIM_TEST_LOG ?? 'silent' });

/** Waits until `check` returns a value (not undefined/false), polling; bounded by timeoutMs. */
export const waitFor = async <T>(what: string, check: () => T | undefined | false, timeoutMs = 20_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise(r => setTimeout(r, 15));
  }
};

/** Starts a simulator and makes this process's Baileys trust its Noise root (what the gateway does in test mode). */
export const startSim = async (opts: WaSimulatorOptions = {}): Promise<WaSimulator> => {
  const sim = await WaSimulator.create(opts);
  WA_CERT_DETAILS.PUBLIC_KEY = sim.rootPublicKey;
  return sim;
};

export const statusCodeOf = (err: Error | undefined): number | undefined =>
  (err as { output?: { statusCode?: number } } | undefined)?.output?.statusCode;

/** A Baileys client with in-memory auth that survives reconnects (like a gateway session). */
export class TestClient {
  readonly creds: AuthenticationCreds = initAuthCreds();
  readonly store = makeMemoryKeyStore();
  readonly upserts: WAMessage[] = [];
  readonly updates: WAMessageUpdate[] = [];
  readonly closes: Array<number | undefined> = [];
  qr: string | undefined;
  sock: WASocket | undefined;
  state: Partial<ConnectionState> = {};
  private readonly sim: WaSimulator;

  constructor(sim: WaSimulator) {
    this.sim = sim;
  }

  connect(): WASocket {
    this.state = {};
    this.qr = undefined;
    const cfg = this.sim.baileysConfig();
    const sock = makeWASocket({
      auth: { creds: this.creds, keys: addTransactionCapability(this.store, logger, { maxCommitRetries: 1, delayBetweenTriesMs: 1 }) },
      waWebSocketUrl: cfg.waWebSocketUrl,
      fetchAgent: cfg.fetchAgent,
      logger,
      markOnlineOnConnect: false,
    });
    sock.ev.on('connection.update', u => {
      if (sock !== this.sock) return;
      Object.assign(this.state, u);
      if (u.qr) this.qr = u.qr;
      if (u.connection === 'close') this.closes.push(statusCodeOf(u.lastDisconnect?.error as Error | undefined));
    });
    sock.ev.on('messages.upsert', ({ messages }) => {
      this.upserts.push(...messages);
    });
    sock.ev.on('messages.update', u => {
      this.updates.push(...u);
    });
    this.sock = sock;
    return sock;
  }

  get jid(): string {
    return this.creds.me?.id ?? '';
  }

  /** Waits for the next close of the current socket; returns its status code. */
  async waitClose(timeoutMs = 20_000): Promise<number | undefined> {
    const n = this.closes.length;
    await waitFor('connection close', () => this.closes.length > n || this.state.connection === 'close', timeoutMs);
    return this.closes[this.closes.length - 1];
  }

  async waitOpen(timeoutMs = 30_000): Promise<void> {
    await waitFor('connection open', () => this.state.connection === 'open' && this.state.receivedPendingNotifications === true, timeoutMs);
  }

  /** Status of a message this client sent, from messages.update (2 server, 3 delivered, 4 read, 0 error). */
  statusOf(id: string): number | undefined {
    let s: number | undefined;
    // v7 folds a receipt that arrives while the own-message upsert is still buffered into that upsert
    for (const m of this.upserts) if (m.key.fromMe && m.key.id === id && typeof m.status === 'number') s = Math.max(s ?? 0, m.status);
    for (const u of this.updates) if (u.key.id === id && typeof u.update.status === 'number') s = Math.max(s ?? 0, u.update.status);
    return s;
  }

  /** Error code of a refused send (ack error), from messages.update or folded into the own upsert. */
  sendErrorOf(id: string): string | undefined {
    for (const m of this.upserts) if (m.key.fromMe && m.key.id === id && m.status === 0) return m.messageStubParameters?.[0] ?? undefined;
    for (const u of this.updates) if (u.key.id === id && u.update.status === 0) return u.update.messageStubParameters?.[0] ?? undefined;
    return undefined;
  }

  received(pred: (m: WAMessage) => boolean): WAMessage | undefined {
    return this.upserts.find(m => !m.key.fromMe && pred(m));
  }

  async end(): Promise<void> {
    const sock = this.sock;
    this.sock = undefined;
    if (!sock) return;
    void sock.end(undefined);
    await waitFor('socket end', () => sock.ws.isClosed, 5000).catch(() => undefined);
  }
}

/** QR-pairs a fresh client to the phone, lets it restart on 515 and waits until it is logged in. */
export const pairWithQr = async (sim: WaSimulator, phone: SimPhone): Promise<TestClient> => {
  const client = new TestClient(sim);
  client.connect();
  const qr = await waitFor('qr', () => client.qr);
  await sim.scanQr(phone, qr);
  const code = await client.waitClose();
  if (code !== 515) throw new Error(`expected 515 after pairing, got ${String(code)}`);
  client.connect();
  await client.waitOpen();
  return client;
};

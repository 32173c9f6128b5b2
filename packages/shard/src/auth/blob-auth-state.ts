/**
 * A Baileys AuthenticationState kept in the blob store (S3/MinIO in production, the data directory when
 * embedded), fenced by the session lease epoch.
 *
 * Layout under `sessions/{id}/auth/` (zero-padded names, so they sort in (epoch, seq) order):
 * - `{epoch}-{seq}-snap.json`: the whole state (creds and every key) as of that point;
 * - `{epoch}-{seq}-log.json`: one durable batch of changes (creds and/or keys; null deletes a key);
 * - `{epoch}-{seq}-journal.jsonl`, on a store that can append (the local one): the batches of one compaction cycle,
 *   one record per line (`{crc32 hex} {json}`), named by the seq of its first; a new journal starts at each snapshot
 *   and after a failed append (which may leave a torn last line: `readJournal`). One append and one fdatasync per
 *   batch instead of a new file, a rename and two fsyncs (docs/benchmarks.md, "messages").
 * The state is the newest snapshot plus every log (and journal record) that sorts after it. A new owner (higher epoch) writes a
 * snapshot of what it loaded before anything else, so a write that a fenced-out owner (lower epoch) lands
 * later sorts before that snapshot and is ignored by every later restore.
 *
 * Writes are group-committed: a batch holds whatever was queued while the previous one was being written,
 * and each batch checks the lease epoch first. `saveCreds`, and every `keys.set` in the durable mode, resolves
 * only once its batch is durable. With `writeBehind`, the hot path does not wait: a `keys.set` that only moves
 * Signal ratchets (sessions, sender keys, used prekeys, LID mappings, device lists...) resolves at once and is
 * stored with the next batch, so a burst of messages costs one write instead of one per message. What Baileys
 * must find again after a crash (creds, new prekeys it will upload, app-state keys) is still awaited. A crash
 * can lose the last batch's ratchet steps of received messages; WhatsApp's retry receipts heal that
 * (docs/sessions.md). Those of sent messages are never lost: a stanza leaves only after `durable()` (Baileys'
 * `beforeRelay`, patches/), which waits for the batch holding them, shared by the sends of that batch. A write that
 * fails (in both modes) is kept and retried with capped, jittered backoff until it lands, its callers waiting
 * up to `writeWaitMs`; while writes fail, write-behind is suspended (ratchet steps are awaited too); a fencing
 * failure stops (`onBackgroundError`, `flush` rejects).
 * Compaction (a snapshot after about `compactEvery` logs, then removing what it supersedes) runs beside the writes, not in
 * their path (`compactInBackground`).
 * Reads come from memory (prekeys packed, key-packing.ts). A failed read is an error: this never falls back to fresh credentials unless the
 * store holds nothing at all for the session.
 */
import { crc32 } from 'node:zlib';
import { BufferJSON, initAuthCreds, proto } from '@whiskeysockets/baileys';
import type { AuthenticationCreds, AuthenticationState, SignalDataSet, SignalDataTypeMap, SignalKeyStore } from '@whiskeysockets/baileys';
import { GatewayError, blobKeys } from '@wagw/shared';
import type { BlobStore, Logger } from '@wagw/shared';
import { packKey, unpackKey } from './key-packing.ts';

type KeyType = keyof SignalDataTypeMap;
type KeyMap = Map<KeyType, Map<string, unknown>>;

interface StoredState {
  v: 1;
  epoch: number;
  seq: number;
  creds?: AuthenticationCreds;
  keys?: Partial<Record<KeyType, Record<string, unknown>>>;
}

export interface BlobAuthStateOptions {
  blobs: BlobStore;
  sessionId: string;
  /** The lease epoch this owner holds. */
  epoch: number;
  /** Fencing check run before every write: true while `epoch` still holds the lease. */
  isCurrent: (epoch: number) => Promise<boolean>;
  logger: Logger;
  /**
   * Write a fresh snapshot (and drop the logs before it) after this many logs on average (default 64): each cycle's
   * count is drawn from [compactEvery / 2, compactEvery * 3 / 2) with `random`, so that sessions loaded together
   * (a shard's restore, a failover, a bench's pairing) do not all compact at the same write (see `compactAfter`).
   */
  compactEvery?: number;
  /** Draws each cycle's compaction count (default Math.random; tests fix it: 0.5 gives exactly `compactEvery`). */
  random?: () => number;
  /** Do not make Baileys wait for ratchet-only key writes (see the class comment). Default false. */
  writeBehind?: boolean;
  /**
   * Longest a caller waits for its write while the store keeps failing (default 60 s): then it is told (the
   * write itself is still retried). Until then a failing write is retried under it, not reported at once.
   */
  writeWaitMs?: number;
  /** A background (write-behind) batch failed: every failure, fencing ones (then writes stop) included. */
  onBackgroundError?: (err: unknown) => void;
}

/** Key types whose new values must be durable before Baileys goes on (it uploads or relies on them). */
const AWAITED_TYPES: ReadonlySet<string> = new Set(['pre-key', 'app-state-sync-key', 'app-state-sync-version']);

/** True when a `keys.set` only moves ratchets: nothing in it must be durable before Baileys continues. */
function ratchetOnly(data: SignalDataSet): boolean {
  for (const [type, entries] of Object.entries(data) as [string, Record<string, unknown> | undefined][]) {
    if (!entries || !AWAITED_TYPES.has(type)) continue;
    // Deleting a used prekey may lag; a new prekey (about to be uploaded) may not.
    if (Object.values(entries).some((v) => v !== null && v !== undefined)) return false;
  }
  return true;
}

/**
 * Delay before retrying a failed write: exponential from 100 ms, capped at 5 s, with equal jitter, so the
 * sessions of a shard that all failed at one store outage do not retry in lockstep when it comes back.
 */
export function retryDelay(failures: number, random: () => number = Math.random): number {
  const ceiling = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

const isFencing = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'STALE_EPOCH' || code === 'LEASE_LOST';
};

// Epochs are floored at the directory's clock (~1.7e12 today), so 16 digits keep the names sortable.
const NAME = /^(\d{16})-(\d{16})-(snap\.json|log\.json|journal\.jsonl)$/;
const pad = (n: number): string => {
  if (!Number.isSafeInteger(n) || n < 0 || n >= 1e16) throw new RangeError(`auth state sequence out of range: ${n}`);
  return String(n).padStart(16, '0');
};

export function authPrefix(sessionId: string): string {
  return blobKeys.auth(sessionId);
}

type ObjectKind = 'snap' | 'log' | 'journal';

function parseName(key: string, prefix: string): { kind: ObjectKind; epoch: number; seq: number } | undefined {
  const m = NAME.exec(key.slice(prefix.length));
  if (!m) return undefined;
  return { kind: (m[3] ?? '').split('.')[0] as ObjectKind, epoch: Number(m[1]), seq: Number(m[2]) };
}

function encode(state: StoredState): Buffer {
  return Buffer.from(JSON.stringify(state, BufferJSON.replacer));
}

/**
 * The stored state of one object, or `undefined` for the leftover of an upload that never completed: empty, or
 * JSON that ends early. No PUT of ours that succeeded stores either (a body is whole JSON), and a caller is only
 * answered after its PUT succeeded, so nothing was acknowledged on such an object and a failed batch is retried
 * under a later seq: skipping it loses nothing. S3 and MinIO never show a partial upload; s3rver (the tests' S3)
 * leaves an empty file behind a PUT the client aborted (S3_REQUEST_TIMEOUT_MS under load), and a restore that
 * refused it looped "start failed" forever. Any other unreadable object is corruption and stops the load.
 */
function decode(bytes: Buffer, key: string): StoredState | undefined {
  if (bytes.length === 0) return undefined;
  const text = bytes.toString('utf8');
  let parsed: StoredState;
  try {
    parsed = JSON.parse(text, BufferJSON.reviver) as StoredState;
  } catch (err) {
    if (err instanceof SyntaxError && endsEarly(err, text)) return undefined;
    throw new GatewayError('INTERNAL', `auth state object ${key} is unreadable`, undefined, { cause: err });
  }
  if (parsed.v !== 1) throw new GatewayError('INTERNAL', `auth state object ${key} has unknown version ${String(parsed.v)}`);
  return parsed;
}

/** The parser ran out of input (V8 says so, or names the position just past the last character): a cut body. */
function endsEarly(err: SyntaxError, text: string): boolean {
  if (err.message.includes('end of JSON input')) return true;
  const at = /at position (\d+)/.exec(err.message);
  return at !== null && Number(at[1]) >= text.length;
}

/** One journal record: `{crc32 of the JSON, 8 hex digits} {JSON}\n` (JSON.stringify never emits a raw newline). */
function journalLine(state: StoredState): Buffer {
  const json = JSON.stringify(state, BufferJSON.replacer);
  return Buffer.from(`${crc32(json).toString(16).padStart(8, '0')} ${json}\n`);
}

/**
 * The records of a journal, in order. Its last line may be torn: a crash or a failed append left a prefix of it (no
 * newline yet, or bytes that do not match their checksum). No caller was answered on that record (an append resolves
 * only after its fdatasync, and a failed one is retried in a new journal), so it is skipped, as a cut upload is. Any
 * earlier line that does not check out is corruption and stops the load.
 */
function readJournal(bytes: Buffer, key: string): { records: StoredState[]; tornTail: boolean } {
  const lines = bytes.toString('utf8').split('\n');
  // A whole journal ends with a newline: the last element is then empty.
  let tornTail = lines.at(-1) !== '';
  lines.pop();
  const records: StoredState[] = [];
  for (const [i, line] of lines.entries()) {
    const json = line.slice(9);
    const whole = line[8] === ' ' && /^[0-9a-f]{8}$/.test(line.slice(0, 8)) && parseInt(line.slice(0, 8), 16) === crc32(json);
    if (!whole) {
      if (i === lines.length - 1 && !tornTail) {
        tornTail = true;
        break;
      }
      throw new GatewayError('INTERNAL', `auth state journal ${key} has a damaged record at line ${i + 1}`);
    }
    const parsed = JSON.parse(json, BufferJSON.reviver) as StoredState;
    if (parsed.v !== 1) throw new GatewayError('INTERNAL', `auth state journal ${key} has a record of unknown version ${String(parsed.v)}`);
    records.push(parsed);
  }
  return { records, tornTail };
}

interface Pending {
  creds?: AuthenticationCreds;
  keys: Partial<Record<KeyType, Record<string, unknown>>>;
  waiters: { resolve: () => void; reject: (err: unknown) => void; since: number }[];
}

export class BlobAuthState {
  readonly state: AuthenticationState;
  /** True when nothing was stored and fresh credentials were created (a new pairing is needed). */
  readonly isNew: boolean;

  private readonly opts: BlobAuthStateOptions;
  private readonly prefix: string;
  private readonly keys: KeyMap;
  private seq: number;
  private logsSinceSnapshot = 0;
  /** The number of logs after which this cycle compacts (`compactAfter`). */
  private compactAt: number;
  private pending: Pending | undefined;
  /** The batch being written now (its waiters may still grow: `durable`). */
  private inflight: Pending | undefined;
  private writing: Promise<void> | undefined;
  private closed = false;
  private closing = false;
  /** A fencing failure of a background write: writes stopped, `flush` rejects with it. */
  private failed: unknown;
  private failures = 0;
  /** The journal batches are appended to (stores that can append), until the next snapshot or a failed append. */
  private journal: string | undefined;
  /** The compaction running beside the writes (`compactInBackground`), if any. */
  private compacting: Promise<void> | undefined;

  private constructor(opts: BlobAuthStateOptions, creds: AuthenticationCreds, keys: KeyMap, seq: number, isNew: boolean) {
    this.opts = opts;
    this.prefix = authPrefix(opts.sessionId);
    this.keys = keys;
    this.seq = seq;
    this.isNew = isNew;
    this.compactAt = this.compactAfter();
    const store: SignalKeyStore = {
      get: async (type, ids) => this.get(type, ids),
      set: async (data) => this.set(data),
    };
    this.state = { creds, keys: store };
  }

  /**
   * Loads the session's state (or creates fresh credentials when the store holds nothing for it) and
   * writes this owner's fencing snapshot. Throws STALE_EPOCH when a newer owner has written already.
   */
  static async load(opts: BlobAuthStateOptions): Promise<BlobAuthState> {
    const prefix = authPrefix(opts.sessionId);
    const names = (await opts.blobs.list(prefix)).map((key) => {
      const parsed = parseName(key, prefix);
      // Something we did not write is a reason to stop, never a reason to treat the session as new.
      if (!parsed) throw new GatewayError('INTERNAL', `${key} is not an auth state object; refusing to load ${opts.sessionId}`);
      return { key, parsed };
    });
    const newest = names.at(-1);
    if (newest && newest.parsed.epoch > opts.epoch) {
      throw new GatewayError('STALE_EPOCH', `auth state of ${opts.sessionId} was written at epoch ${newest.parsed.epoch} > ${opts.epoch}`);
    }
    const bytesOf = async (key: string): Promise<Buffer> => {
      const bytes = await opts.blobs.get(key);
      if (bytes === null) throw new GatewayError('INTERNAL', `auth state object ${key} vanished while loading`);
      return bytes;
    };
    const read = async (key: string): Promise<StoredState | undefined> => {
      const bytes = await bytesOf(key);
      const body = decode(bytes, key);
      if (body === undefined) opts.logger.warn({ sessionId: opts.sessionId, key, bytes: bytes.length }, 'auth state object of an upload that never completed; skipped');
      return body;
    };
    // The newest whole snapshot and every log after it (with no snapshot yet: every log). A snapshot whose upload
    // never completed removed nothing (older objects go only after its PUT succeeded): the one before it counts.
    let from = 0;
    let base: StoredState | undefined;
    for (let i = names.length - 1; i >= 0; i--) {
      const entry = names[i];
      if (entry?.parsed.kind !== 'snap') continue;
      base = await read(entry.key);
      if (base !== undefined) {
        from = i + 1;
        break;
      }
    }
    const readLogs = async ({ key, parsed }: { key: string; parsed: { kind: ObjectKind } }): Promise<StoredState[]> => {
      if (parsed.kind === 'log') return [await read(key)].filter((body) => body !== undefined);
      const { records, tornTail } = readJournal(await bytesOf(key), key);
      if (tornTail) opts.logger.warn({ sessionId: opts.sessionId, key, records: records.length }, 'auth state journal ends in an append that never completed; skipped');
      return records;
    };
    // In (epoch, seq) order: a journal's records interleave with nothing else, but an append in flight at a compaction
    // may land after the next journal's first record.
    const logs = (await Promise.all(names.slice(from).filter((n) => n.parsed.kind !== 'snap').map(readLogs)))
      .flat()
      .sort((a, b) => a.epoch - b.epoch || a.seq - b.seq);
    let creds: AuthenticationCreds | undefined;
    const keys: KeyMap = new Map();
    for (const body of [base, ...logs]) {
      if (body === undefined) continue;
      if (body.creds) creds = body.creds;
      applyKeys(keys, body.keys ?? {});
    }
    // Nothing whole was ever stored (no objects, or only uploads that never completed): no credentials were.
    const isNew = base === undefined && logs.length === 0;
    if (!creds) {
      if (!isNew) throw new GatewayError('INTERNAL', `auth state of ${opts.sessionId} has objects but no credentials`);
      creds = initAuthCreds();
    }
    // This owner's writes continue above every seq it stored: a journal is named by its first record, not its last.
    let lastSeq = 0;
    for (const { epoch, seq } of [...names.map((n) => n.parsed), ...logs]) if (epoch === opts.epoch && seq > lastSeq) lastSeq = seq;
    const auth = new BlobAuthState(opts, creds, keys, lastSeq, isNew);
    await auth.snapshot();
    return auth;
  }

  /** Persists the current credentials; resolves once durable. Wire it to Baileys' `creds.update`. */
  saveCreds(): Promise<void> {
    return this.enqueue((p) => {
      p.creds = this.state.creds;
    });
  }

  /**
   * Resolves once every change applied so far is durable (the batch holding it written), not waiting for writes
   * queued after the call, so a steady stream of them cannot hold it off as it can `flush`. The shard awaits it
   * before a sent stanza leaves (Baileys' `beforeRelay`, patches/): the ratchet step a message used is stored
   * before anyone can see the message, even with `writeBehind`. Concurrent callers join the batch being filled
   * (or the one in flight), so a burst of sends costs one write per batch, not one each. Rejects when writes
   * were fenced out or the store is closed, or after `writeWaitMs` of failures.
   */
  durable(): Promise<void> {
    const refused = this.refusal();
    if (refused !== undefined) return Promise.reject(refused);
    // Everything applied is in `pending` (not written yet) or in the batch being written; the newest of the two
    // is written last, so waiting for it covers both.
    const batch = this.pending ?? this.inflight;
    if (batch === undefined) return Promise.resolve();
    return new Promise<void>((resolve, reject) => batch.waiters.push({ resolve, reject, since: Date.now() }));
  }

  /** Resolves once every write queued so far is durable (and a running compaction ended); rejects when background writes were fenced out. */
  async flush(): Promise<void> {
    while (this.writing || this.pending || this.compacting) await (this.writing ?? this.compacting ?? Promise.resolve());
    if (this.failed !== undefined) throw this.failed;
  }

  /** Stops accepting writes (after flushing what is queued; a failing store is retried a few times only). */
  async close(): Promise<void> {
    this.closing = true;
    try {
      await this.flush();
    } finally {
      this.closed = true;
    }
  }

  /** Deletes every stored byte of this session's auth state. */
  static async wipe(blobs: BlobStore, sessionId: string): Promise<number> {
    return blobs.deletePrefix(authPrefix(sessionId));
  }

  /** Number of keys held in memory, by type (for stats and tests). */
  keyCounts(): Record<string, number> {
    return Object.fromEntries([...this.keys].map(([type, m]) => [type, m.size]));
  }

  private get<T extends KeyType>(type: T, ids: string[]): { [id: string]: SignalDataTypeMap[T] } {
    const out: { [id: string]: SignalDataTypeMap[T] } = {};
    const m = this.keys.get(type);
    if (!m) return out;
    for (const id of ids) {
      const value = m.get(id);
      if (value === undefined || value === null) continue;
      out[id] = (type === 'app-state-sync-key'
        ? proto.Message.AppStateSyncKeyData.fromObject(value as Record<string, unknown>)
        : unpackKey(type, value)) as SignalDataTypeMap[T];
    }
    return out;
  }

  /** Why no write is taken any more (closed, or background writes fenced out); undefined while open. */
  private refusal(): unknown {
    if (this.closed) return new GatewayError('LEASE_LOST', `auth state of ${this.opts.sessionId} is closed`);
    return this.failed;
  }

  private set(data: SignalDataSet): Promise<void> {
    // Checked before the write-behind path below swallows the rejection.
    const refused = this.refusal();
    if (refused !== undefined) return Promise.reject(refused);
    applyKeys(this.keys, data as Partial<Record<KeyType, Record<string, unknown>>>);
    const durable = this.enqueue((p) => {
      for (const [type, entries] of Object.entries(data) as [KeyType, Record<string, unknown> | undefined][]) {
        if (!entries) continue;
        const target = (p.keys[type] ??= {});
        Object.assign(target, entries);
      }
    });
    // Write-behind only while the store takes writes: once one fails, ratchet steps are awaited too, so Baileys
    // does not acknowledge messages whose ratchet step is not stored (a crash during an outage would otherwise
    // restore a state older than the one every message of the outage was acknowledged with). At most the
    // batch that failed first is at risk, as any last batch before a crash.
    if (!this.opts.writeBehind || !ratchetOnly(data) || this.failures > 0) return durable;
    durable.catch(() => undefined); // reported through onBackgroundError / flush
    return Promise.resolve();
  }

  private enqueue(fill: (p: Pending) => void): Promise<void> {
    const refused = this.refusal();
    if (refused !== undefined) return Promise.reject(refused);
    const p = (this.pending ??= { keys: {}, waiters: [] });
    fill(p);
    const done = new Promise<void>((resolve, reject) => p.waiters.push({ resolve, reject, since: Date.now() }));
    this.writing ??= this.drain();
    return done;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending) {
        const batch = this.pending;
        this.pending = undefined;
        this.inflight = batch;
        try {
          await this.writeLog(batch);
          this.inflight = undefined;
          this.failures = 0;
          for (const w of batch.waiters) w.resolve();
        } catch (err) {
          this.inflight = undefined;
          // Callers wait through the retries (bounded by writeWaitMs), so a short outage is only a delay.
          const limit = Date.now() - (this.opts.writeWaitMs ?? 60_000);
          // Given up on: the lease is gone, or a closing store keeps failing.
          const fenced = isFencing(err) || (this.closing && this.failures + 1 >= 3);
          for (const w of batch.waiters) if (fenced || w.since <= limit) w.reject(err);
          batch.waiters = fenced ? [] : batch.waiters.filter((w) => w.since > limit);
          // A failed batch is never dropped, in either mode: memory already holds its changes (Baileys applied
          // them), so dropping it would leave the store behind memory for good, and the next restore would
          // bring back a state older than one messages were acknowledged with. Retry it under what was queued
          // since (newer values win), unless the lease is gone or a closing store keeps failing.
          this.failures++;
          this.opts.onBackgroundError?.(err);
          if (fenced) {
            this.failed = err;
            // Queued meanwhile by other calls (TS cannot see that across the awaits above).
            for (const w of (this.pending as Pending | undefined)?.waiters ?? []) w.reject(err);
            this.pending = undefined;
            return;
          }
          this.pending = mergeBatches(batch, this.pending);
          await new Promise((r) => setTimeout(r, retryDelay(this.failures)));
        }
      }
    } finally {
      this.writing = undefined;
    }
  }

  private async fence(): Promise<void> {
    if (!(await this.opts.isCurrent(this.opts.epoch))) {
      throw new GatewayError('STALE_EPOCH', `lease of ${this.opts.sessionId} at epoch ${this.opts.epoch} is no longer current`);
    }
  }

  private async writeLog(batch: Pending): Promise<void> {
    await this.fence();
    const seq = ++this.seq;
    const body: StoredState = { v: 1, epoch: this.opts.epoch, seq, keys: batch.keys };
    if (batch.creds) body.creds = batch.creds;
    const { blobs } = this.opts;
    if (blobs.append === undefined) {
      await blobs.put(this.objectName(seq, 'log.json'), encode(body), 'application/json');
    } else {
      const journal = (this.journal ??= this.objectName(seq, 'journal.jsonl'));
      try {
        await blobs.append(journal, journalLine(body));
      } catch (err) {
        // It may have left a torn line: the retry (and every later batch) goes to a new journal, so a torn line is
        // always a journal's last, where a restore skips it.
        if (this.journal === journal) this.journal = undefined;
        throw err;
      }
    }
    this.logsSinceSnapshot++;
    if (this.logsSinceSnapshot >= this.compactAt) this.compactInBackground();
  }

  /**
   * Compaction beside the writes, not in their path: the batches written meanwhile, and the sends waiting on them
   * (`durable`), do not wait for the snapshot's encode and upload, nor for removing what it supersedes (a list and
   * a delete per object). Before, every 64th write of a session held its next sends for all of that. Overlapping is
   * safe: the snapshot holds the state of memory as of its seq, which already has every change queued before it; a
   * log written meanwhile sorts after it, or (its put landing late under an earlier seq) holds changes the snapshot
   * has too and is ignored by restores and removed by the next compaction. Objects are removed only after the
   * snapshot's put succeeded. One compaction at a time; a failed one is retried by the next write, and a fencing
   * failure stops writes as a fenced batch does.
   */
  private compactInBackground(): void {
    if (this.compacting !== undefined) return;
    this.compacting = this.snapshot()
      .catch((err: unknown) => {
        // Reported as a failed write is (the session runner logs it, or aborts on a fencing failure); the next write retries it.
        this.opts.onBackgroundError?.(err);
        if (isFencing(err)) this.failed ??= err;
      })
      .finally(() => {
        this.compacting = undefined;
      });
  }

  /**
   * This cycle's compaction count, drawn around `compactEvery`. A fixed count made the sessions of a shard, loaded
   * together and sending alike, compact at the same write: in bench/messages 100 sessions did at once, each with a
   * 173 KB snapshot (2.2 ms to encode, on the event loop) and a list and delete of 64 objects, and every send of the
   * shard waited up to 245 ms for about a second. Drawn per cycle, they spread over half a cycle's sends each way.
   */
  private compactAfter(): number {
    const every = this.opts.compactEvery ?? 64;
    return Math.max(1, Math.floor(every * (0.5 + (this.opts.random ?? Math.random)())));
  }

  /** The key of this owner's object of `seq` (the layout in the class comment). */
  private objectName(seq: number, suffix: 'snap.json' | 'log.json' | 'journal.jsonl'): string {
    return `${this.prefix}${pad(this.opts.epoch)}-${pad(seq)}-${suffix}`;
  }

  /** Writes the whole state as one snapshot, then removes the objects it supersedes. */
  private async snapshot(): Promise<void> {
    await this.fence();
    const seq = ++this.seq;
    // Batches from here on go to a new journal, named after this snapshot: the current one, which sorts before it, only
    // holds records of lower seq (their changes are in memory, so in the snapshot) and is removed with the rest.
    this.journal = undefined;
    const keys: Partial<Record<KeyType, Record<string, unknown>>> = {};
    for (const [type, m] of this.keys) {
      const entries: Record<string, unknown> = {};
      for (const [id, value] of m) entries[id] = unpackKey(type, value);
      keys[type] = entries;
    }
    const name = this.objectName(seq, 'snap.json');
    await this.opts.blobs.put(name, encode({ v: 1, epoch: this.opts.epoch, seq, creds: this.state.creds, keys }), 'application/json');
    this.logsSinceSnapshot = 0;
    this.compactAt = this.compactAfter();
    const older = (await this.opts.blobs.list(this.prefix)).filter((k) => k < name && parseName(k, this.prefix) !== undefined);
    await Promise.all(older.map((k) => this.opts.blobs.delete(k)));
    this.opts.logger.debug({ sessionId: this.opts.sessionId, seq, removed: older.length }, 'auth state snapshot written');
  }
}

/** `older` with `newer` applied over it (creds and each key); the waiters of both wait for the merged write. */
function mergeBatches(older: Pending, newer: Pending | undefined): Pending {
  const keys: Partial<Record<KeyType, Record<string, unknown>>> = {};
  for (const source of [older.keys, newer?.keys ?? {}]) {
    for (const [type, entries] of Object.entries(source) as [KeyType, Record<string, unknown> | undefined][]) {
      if (entries) Object.assign((keys[type] ??= {}), entries);
    }
  }
  const merged: Pending = { keys, waiters: [...older.waiters, ...(newer?.waiters ?? [])] };
  const creds = newer?.creds ?? older.creds;
  if (creds) merged.creds = creds;
  return merged;
}

function applyKeys(target: KeyMap, data: Partial<Record<KeyType, Record<string, unknown> | undefined>>): void {
  for (const [type, entries] of Object.entries(data) as [KeyType, Record<string, unknown> | undefined][]) {
    if (!entries) continue;
    let m = target.get(type);
    if (!m) target.set(type, (m = new Map()));
    for (const [id, value] of Object.entries(entries)) {
      if (value === null || value === undefined) m.delete(id);
      else m.set(id, packKey(type, value));
    }
  }
}

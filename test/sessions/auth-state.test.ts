// BlobAuthState against both real blob stores: durability, fencing by lease epoch, no silent fresh identity.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SignalDataSet } from '@whiskeysockets/baileys';
import { BlobAuthState, authPrefix, retryDelay } from '@wagw/shard/auth';
import { createRootLogger, withTimeout } from '@wagw/shared';
import type { BlobStore } from '@wagw/shared';
import { LocalBlobStore, S3BlobStore } from '@wagw/stores';
import { startS3, tempDir, testLogger } from '../harness/index.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent', destination: testLogger().destination });

type Factory = (t: { after(fn: () => Promise<void>): void }) => Promise<BlobStore>;

const factories: Record<string, Factory> = {
  local: async (t) => LocalBlobStore.create((await tempDir(t)).path),
  s3: async (t) => {
    const s3 = await startS3(t);
    const store = await S3BlobStore.create({ ...s3 }, { logger });
    t.after(() => store.close());
    return store;
  },
};

const always = async (): Promise<boolean> => true;
let n = 0;
const sid = () => `sess-${process.pid}-${++n}`;

function preKeys(count: number, offset = 0): SignalDataSet {
  const out: Record<string, { public: Buffer; private: Buffer }> = {};
  for (let i = 0; i < count; i++) {
    out[String(offset + i)] = { public: Buffer.alloc(32, (offset + i) % 256), private: Buffer.alloc(32, 7) };
  }
  return { 'pre-key': out };
}

for (const [name, makeStore] of Object.entries(factories)) {
  describe(`BlobAuthState on ${name} blobs`, () => {
    test('an empty store yields fresh credentials, marked new, and a fencing snapshot', async (t) => {
      const blobs = await makeStore(t);
      const id = sid();
      const auth = await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger });
      assert.equal(auth.isNew, true);
      assert.ok(auth.state.creds.noiseKey.public.length === 32);
      assert.equal((await blobs.list(authPrefix(id))).length, 1);
    });

    test('creds and keys written before an await resolve are there for the next owner, bytes intact', async (t) => {
      const blobs = await makeStore(t);
      const id = sid();
      const a = await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger });
      a.state.creds.me = { id: '6281234567890:3@s.whatsapp.net', name: 'Ana' };
      await a.saveCreds();
      await a.state.keys.set(preKeys(812));
      await a.state.keys.set({ session: { 'x.0': Buffer.from('ratchet-1') }, 'app-state-sync-key': { k1: { keyData: Buffer.from('kd'), timestamp: 5 } } });
      await a.state.keys.set({ 'pre-key': { '3': null } });

      const b = await BlobAuthState.load({ blobs, sessionId: id, epoch: 2, isCurrent: always, logger });
      assert.equal(b.isNew, false);
      assert.equal(b.state.creds.me?.id, '6281234567890:3@s.whatsapp.net');
      assert.deepEqual(b.state.creds.noiseKey.private, a.state.creds.noiseKey.private);
      const got = await b.state.keys.get('pre-key', ['0', '3', '811']);
      assert.deepEqual(Object.keys(got).sort(), ['0', '811']);
      assert.deepEqual(got['811']?.public, Buffer.alloc(32, 811 % 256));
      assert.deepEqual((await b.state.keys.get('session', ['x.0']))['x.0'], Buffer.from('ratchet-1'));
      const sync = (await b.state.keys.get('app-state-sync-key', ['k1']))['k1'];
      assert.deepEqual(Buffer.from(sync?.keyData ?? []), Buffer.from('kd'));
      assert.equal(typeof (sync as { toJSON?: unknown }).toJSON, 'function', 'app-state-sync-key is rebuilt as a proto object');
      assert.equal(b.keyCounts()['pre-key'], 811);
    });

    test('a write whose lease epoch is no longer current is refused and not stored', async (t) => {
      const blobs = await makeStore(t);
      const id = sid();
      let current = true;
      const a = await BlobAuthState.load({ blobs, sessionId: id, epoch: 4, isCurrent: async () => current, logger });
      current = false;
      await assert.rejects(a.state.keys.set({ session: { s: Buffer.from('late') } }) as Promise<void>, { code: 'STALE_EPOCH' });
      const b = await BlobAuthState.load({ blobs, sessionId: id, epoch: 5, isCurrent: always, logger });
      assert.deepEqual(await b.state.keys.get('session', ['s']), {});
    });

    test('a fenced-out owner that still lands a write is ignored by every later restore', async (t) => {
      const blobs = await makeStore(t);
      const id = sid();
      const old = await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger });
      await old.state.keys.set({ session: { s: Buffer.from('v1') } });
      const next = await BlobAuthState.load({ blobs, sessionId: id, epoch: 2, isCurrent: always, logger });
      // The race fencing cannot close: the old owner checked its lease just before losing it, then wrote.
      await old.state.keys.set({ session: { s: Buffer.from('stale') } });
      await next.state.keys.set({ session: { t: Buffer.from('v2') } });
      const third = await BlobAuthState.load({ blobs, sessionId: id, epoch: 3, isCurrent: always, logger });
      assert.deepEqual(await third.state.keys.get('session', ['s', 't']), { s: Buffer.from('v1'), t: Buffer.from('v2') });
    });

    test('epochs the size of a millisecond clock keep their order, and unknown objects are never mistaken for none', async (t) => {
      const blobs = await makeStore(t);
      const id = sid();
      const e1 = 1_764_000_000_000;
      const a = await BlobAuthState.load({ blobs, sessionId: id, epoch: e1, isCurrent: always, logger });
      await a.state.keys.set({ session: { s: Buffer.from('one') } });
      const b = await BlobAuthState.load({ blobs, sessionId: id, epoch: 9_999_999_999_999, isCurrent: always, logger });
      assert.equal(b.isNew, false);
      assert.deepEqual(await b.state.keys.get('session', ['s']), { s: Buffer.from('one') });
      await blobs.put(`${authPrefix(id)}garbage.json`, Buffer.from('{}'));
      await assert.rejects(BlobAuthState.load({ blobs, sessionId: `${id}`, epoch: 1e13, isCurrent: always, logger }), /not an auth state object/);
    });

    test('an owner with an older epoch than what is stored is refused at load', async (t) => {
      const blobs = await makeStore(t);
      const id = sid();
      await BlobAuthState.load({ blobs, sessionId: id, epoch: 9, isCurrent: always, logger });
      await assert.rejects(BlobAuthState.load({ blobs, sessionId: id, epoch: 8, isCurrent: always, logger }), { code: 'STALE_EPOCH' });
    });

    test('an unreadable object is an error, never a fresh identity', async (t) => {
      const blobs = await makeStore(t);
      const id = sid();
      const a = await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger });
      await a.saveCreds();
      const [first] = await blobs.list(authPrefix(id));
      assert.ok(first);
      await blobs.put(`${authPrefix(id)}0000000000000001-0000000000000099-log.json`, Buffer.from('{not json'));
      await assert.rejects(BlobAuthState.load({ blobs, sessionId: id, epoch: 2, isCurrent: always, logger }), /unreadable/);
    });

    test('an upload that never completed (empty or cut short) is skipped: the whole objects make the state', async (t) => {
      const blobs = await makeStore(t);
      const id = sid();
      const a = await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger });
      a.state.creds.me = { id: '6281234567890:3@s.whatsapp.net', name: 'Ana' };
      await a.saveCreds();
      await a.state.keys.set(preKeys(3));
      // What s3rver leaves behind PUTs the client aborted: an empty object, and one cut inside its JSON. Their
      // batches were retried under later seqs (the last whole log below).
      const prefix = authPrefix(id);
      const whole = Buffer.from(JSON.stringify({ v: 1, epoch: 1, seq: 98, keys: { session: { s: { type: 'Buffer', data: 'cmF0Y2hldA==' } } } }));
      await blobs.put(`${prefix}0000000000000001-0000000000000096-log.json`, Buffer.alloc(0));
      await blobs.put(`${prefix}0000000000000001-0000000000000097-log.json`, whole.subarray(0, whole.length - 9));
      await blobs.put(`${prefix}0000000000000001-0000000000000098-log.json`, whole);
      const b = await BlobAuthState.load({ blobs, sessionId: id, epoch: 2, isCurrent: always, logger });
      assert.equal(b.isNew, false);
      assert.equal(b.state.creds.me?.id, '6281234567890:3@s.whatsapp.net');
      assert.deepEqual(Object.keys(await b.state.keys.get('pre-key', ['0', '1', '2'])).sort(), ['0', '1', '2']);
      assert.deepEqual(await b.state.keys.get('session', ['s']), { s: Buffer.from('ratchet') });
      // The next owner's fencing snapshot removed the leftovers with everything it supersedes.
      assert.equal((await blobs.list(prefix)).length, 1);
    });

    test('a newest snapshot whose upload never completed: the snapshot before it and its logs count', async (t) => {
      const blobs = await makeStore(t);
      const id = sid();
      const a = await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger });
      await a.state.keys.set({ session: { s: Buffer.from('kept') } });
      await blobs.put(`${authPrefix(id)}0000000000000001-0000000000000099-snap.json`, Buffer.alloc(0));
      const b = await BlobAuthState.load({ blobs, sessionId: id, epoch: 2, isCurrent: always, logger });
      assert.equal(b.isNew, false);
      assert.deepEqual(await b.state.keys.get('session', ['s']), { s: Buffer.from('kept') });
    });

    test('only uploads that never completed: nothing was ever stored, so the session is new', async (t) => {
      const blobs = await makeStore(t);
      const id = sid();
      await blobs.put(`${authPrefix(id)}0000000000000001-0000000000000001-snap.json`, Buffer.alloc(0));
      const a = await BlobAuthState.load({ blobs, sessionId: id, epoch: 2, isCurrent: always, logger });
      assert.equal(a.isNew, true);
    });

    test('concurrent writes are group-committed and compaction bounds the object count', async (t) => {
      const blobs = await makeStore(t);
      const id = sid();
      const a = await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger, compactEvery: 8, random: () => 0.5 });
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 200; i++) writes.push(a.state.keys.set({ session: { [`peer${i}.0`]: Buffer.from(`r${i}`) } }) as Promise<void>);
      await Promise.all(writes);
      const objects = await blobs.list(authPrefix(id));
      assert.ok(objects.length <= 9, `expected compaction to keep at most 9 objects, found ${objects.length}`);
      const b = await BlobAuthState.load({ blobs, sessionId: id, epoch: 2, isCurrent: always, logger });
      assert.equal(b.keyCounts()['session'], 200);
      assert.deepEqual((await b.state.keys.get('session', ['peer199.0']))['peer199.0'], Buffer.from('r199'));
    });

    test('sessions loaded together do not all compact at the same write: each cycle\'s count is drawn around compactEvery', async (t) => {
      // With a fixed count, the 100 sessions of bench/messages compacted at once and every send of the shard waited up to
      // 245 ms. Here 40 sessions write 16 logs each in step, with compactEvery 16: each draws its count from [8, 24), so
      // about 9 in 16 have compacted by then. All of them (or none) would take odds below 1e-9; the fixed count compacts all.
      const blobs = await makeStore(t);
      const ids = Array.from({ length: 40 }, () => sid());
      const states = await Promise.all(ids.map(async (id) => await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger, compactEvery: 16 })));
      for (let i = 0; i < 16; i++) await Promise.all(states.map(async (a) => await a.state.keys.set({ session: { 'x.0': Buffer.from(`r${i}`) } })));
      await Promise.all(states.map(async (a) => await a.flush()));
      // The fencing snapshot (seq 1) is removed by the first compaction only.
      const compacted = (await Promise.all(ids.map(async (id) => await blobs.list(authPrefix(id))))).filter((keys) => !keys.some((k) => k.endsWith('-0000000000000001-snap.json'))).length;
      assert.ok(compacted > 0 && compacted < ids.length, `${compacted} of ${ids.length} sessions compacted by their 16th write: the counts were not spread`);
    });

    test('wipe removes every stored byte of the session and nothing else', async (t) => {
      const blobs = await makeStore(t);
      const id = sid();
      const other = sid();
      await (await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger })).saveCreds();
      await (await BlobAuthState.load({ blobs, sessionId: other, epoch: 1, isCurrent: always, logger })).saveCreds();
      assert.ok((await BlobAuthState.wipe(blobs, id)) >= 1);
      assert.deepEqual(await blobs.list(authPrefix(id)), []);
      assert.ok((await blobs.list(authPrefix(other))).length >= 1);
    });
  });
}


/** A blob store whose puts (or lists) can be held back or made to fail, to observe what a write waits for. */
function controllable(inner: BlobStore): {
  blobs: BlobStore;
  hold(): void;
  release(): void;
  holdLists(): void;
  releaseLists(): void;
  /** Resolves once a list is held at the gate `holdLists` set (compaction's list comes after its snapshot's put). */
  listHeld(): Promise<void>;
  holdSnapshots(): void;
  releaseSnapshots(): void;
  failNext(count: number): void;
  puts: () => number;
  heldLists: () => number;
} {
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  let listGate: Promise<void> | undefined;
  let openLists: (() => void) | undefined;
  let failures = 0;
  let puts = 0;
  let heldLists = 0;
  let onListHeld: (() => void) | undefined;
  const listHeldOnce = new Promise<void>((r) => (onListHeld = r));
  let snapGate: Promise<void> | undefined;
  let openSnaps: (() => void) | undefined;
  // A write is a put, or an append where the store can (the local one: the auth state's journal): both are held,
  // failed and counted alike.
  const write = async (go: () => Promise<void>): Promise<void> => {
    if (gate) await gate;
    if (failures > 0) {
      failures--;
      throw new Error('injected blob store failure');
    }
    puts++;
    return go();
  };
  const put: BlobStore['put'] = async (key, data, contentType) => {
    if (snapGate && key.endsWith('-snap.json')) await snapGate;
    return write(() => inner.put(key, data, contentType));
  };
  const innerAppend = inner.append?.bind(inner);
  const append: BlobStore['append'] = innerAppend && (async (key, data) => write(() => innerAppend(key, data)));
  const list: BlobStore['list'] = async (prefix) => {
    if (listGate) {
      heldLists++;
      onListHeld?.();
      await listGate;
    }
    return inner.list(prefix);
  };
  const blobs = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'put') return put;
      if (prop === 'append') return append;
      if (prop === 'list') return list;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    blobs,
    hold: () => {
      gate = new Promise((r) => (open = r));
    },
    release: () => {
      gate = undefined;
      open?.();
    },
    holdLists: () => {
      listGate = new Promise((r) => (openLists = r));
    },
    releaseLists: () => {
      listGate = undefined;
      openLists?.();
    },
    listHeld: () => listHeldOnce,
    holdSnapshots: () => {
      snapGate = new Promise((r) => (openSnaps = r));
    },
    releaseSnapshots: () => {
      snapGate = undefined;
      openSnaps?.();
    },
    failNext: (count) => {
      failures = count;
    },
    puts: () => puts,
    heldLists: () => heldLists,
  };
}

describe('BlobAuthState write-behind (SESSION_KEY_WRITE_BEHIND)', () => {
  test('ratchet updates do not wait for the store and a burst becomes one write; new prekeys and creds still wait', async (t) => {
    const ctl = controllable(await LocalBlobStore.create((await tempDir(t)).path));
    const id = sid();
    const a = await BlobAuthState.load({ blobs: ctl.blobs, sessionId: id, epoch: 1, isCurrent: always, logger, writeBehind: true });
    ctl.hold();
    const before = ctl.puts();
    // Resolves while the store is held: Baileys is not waiting for the disk.
    await a.state.keys.set({ session: { 'x.0': Buffer.from('r1') } });
    for (let i = 2; i <= 50; i++) await a.state.keys.set({ session: { 'x.0': Buffer.from(`r${i}`) }, 'pre-key': { [String(i)]: null } });
    let prekeysDurable = false;
    const prekeys = (a.state.keys.set(preKeys(5, 1000)) as Promise<void>).then(() => (prekeysDurable = true));
    let credsDurable = false;
    const creds = a.saveCreds().then(() => (credsDurable = true));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(prekeysDurable, false, 'new prekeys resolve only once stored');
    assert.equal(credsDurable, false, 'creds resolve only once stored');
    ctl.release();
    await Promise.all([prekeys, creds]);
    await a.flush();
    assert.ok(ctl.puts() - before <= 2, `50 ratchet updates + prekeys + creds took ${ctl.puts() - before} writes`);
    const b = await BlobAuthState.load({ blobs: ctl.blobs, sessionId: id, epoch: 2, isCurrent: always, logger });
    assert.deepEqual((await b.state.keys.get('session', ['x.0']))['x.0'], Buffer.from('r50'));
    assert.equal(Object.keys(await b.state.keys.get('pre-key', ['1000', '1004'])).length, 2);
  });

  test('a failing store is retried until the background batch lands', async (t) => {
    const ctl = controllable(await LocalBlobStore.create((await tempDir(t)).path));
    const id = sid();
    const errors: unknown[] = [];
    const a = await BlobAuthState.load({ blobs: ctl.blobs, sessionId: id, epoch: 1, isCurrent: always, logger, writeBehind: true, onBackgroundError: (e) => errors.push(e) });
    ctl.failNext(2);
    await a.state.keys.set({ session: { s: Buffer.from('kept') } });
    await a.state.keys.set({ session: { t: Buffer.from('also') } });
    await a.flush();
    assert.equal(errors.length, 2);
    const b = await BlobAuthState.load({ blobs: ctl.blobs, sessionId: id, epoch: 2, isCurrent: always, logger });
    assert.deepEqual(await b.state.keys.get('session', ['s', 't']), { s: Buffer.from('kept'), t: Buffer.from('also') });
  });

  test('without write-behind too, a failed write is kept and retried under its caller, never dropped', async (t) => {
    const ctl = controllable(await LocalBlobStore.create((await tempDir(t)).path));
    const id = sid();
    const a = await BlobAuthState.load({ blobs: ctl.blobs, sessionId: id, epoch: 1, isCurrent: always, logger });
    ctl.failNext(2);
    // The caller (Baileys) waits through the retries: memory already holds the change, and the store must catch
    // up, or the next restore would bring back a state older than the one the session ran (and acknowledged) with.
    await a.state.keys.set({ session: { s: Buffer.from('kept') } });
    const b = await BlobAuthState.load({ blobs: ctl.blobs, sessionId: id, epoch: 2, isCurrent: always, logger });
    assert.deepEqual(await b.state.keys.get('session', ['s']), { s: Buffer.from('kept') });
  });

  test('a caller is told once its write failed for longer than writeWaitMs; the write is still retried', async (t) => {
    const ctl = controllable(await LocalBlobStore.create((await tempDir(t)).path));
    const id = sid();
    const a = await BlobAuthState.load({ blobs: ctl.blobs, sessionId: id, epoch: 1, isCurrent: always, logger, writeWaitMs: 0 });
    ctl.failNext(2);
    await assert.rejects(a.saveCreds(), /injected/);
    await a.flush();
    assert.equal(ctl.puts() > 1, true, 'retried after the caller was told');
  });

  test('while the store fails, write-behind is suspended: ratchet steps wait until stored', async (t) => {
    const ctl = controllable(await LocalBlobStore.create((await tempDir(t)).path));
    const id = sid();
    const a = await BlobAuthState.load({ blobs: ctl.blobs, sessionId: id, epoch: 1, isCurrent: always, logger, writeBehind: true, onBackgroundError: () => undefined });
    ctl.failNext(1);
    await a.state.keys.set({ session: { s: Buffer.from('first') } }); // resolves at once: the store looked fine
    await new Promise((r) => setTimeout(r, 20)); // its write fails meanwhile
    ctl.hold();
    let stored = false;
    const second = (a.state.keys.set({ session: { s: Buffer.from('second') } }) as Promise<void>).then(() => (stored = true));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(stored, false, 'a ratchet step during a store failure is acknowledged only once stored');
    ctl.release();
    await second;
    const b = await BlobAuthState.load({ blobs: ctl.blobs, sessionId: id, epoch: 2, isCurrent: always, logger });
    assert.deepEqual(await b.state.keys.get('session', ['s']), { s: Buffer.from('second') });
  });

  test('retry delays grow, are capped at 5 s and jittered', () => {
    assert.equal(retryDelay(1, () => 0), 100);
    assert.equal(retryDelay(1, () => 1), 200);
    assert.equal(retryDelay(50, () => 0), 2_500);
    assert.equal(retryDelay(50, () => 1), 5_000);
    assert.notEqual(retryDelay(3, () => 0), retryDelay(3, () => 0.9), 'two sessions failing together do not retry in lockstep');
  });

  test('durable() waits for the batch holding what was applied, shared by concurrent callers, not for later writes', async (t) => {
    const ctl = controllable(await LocalBlobStore.create((await tempDir(t)).path));
    const id = sid();
    const a = await BlobAuthState.load({ blobs: ctl.blobs, sessionId: id, epoch: 1, isCurrent: always, logger, writeBehind: true });
    await a.durable(); // nothing queued: at once
    ctl.hold();
    const before = ctl.puts();
    // A send's step goes to the store in the background (write-behind) and is held there; its stanza waits.
    await a.state.keys.set({ session: { 'x.0': Buffer.from('s1') } });
    const settled: string[] = [];
    const first = a.durable().then(() => settled.push('first'));
    // Two more sends while that write is in flight: both join the next batch.
    await a.state.keys.set({ session: { 'x.0': Buffer.from('s2') } });
    const second = a.durable().then(() => settled.push('second'));
    await a.state.keys.set({ 'sender-key': { 'g.0': Buffer.from('k3') } });
    const third = a.durable().then(() => settled.push('third'));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(settled, [], 'nothing is durable while the store holds the write');
    ctl.release();
    await Promise.all([first, second, third]);
    assert.deepEqual(settled, ['first', 'second', 'third'], 'in the order the sends were encrypted');
    assert.equal(ctl.puts() - before, 2, 'three sends, two writes: the one in flight and the batch the other two shared');
    // A write queued after the call is not waited for.
    ctl.hold();
    await a.state.keys.set({ session: { 'x.0': Buffer.from('s4') } });
    const fourth = a.durable();
    await a.state.keys.set({ session: { 'x.0': Buffer.from('s5') } }); // queued behind s4's write, which is held
    ctl.release();
    ctl.hold(); // s4's write goes through, s5's is held now
    const fourthDone = await Promise.race([fourth.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 10_000))]);
    assert.equal(fourthDone, true, 'durable() waited for a write queued after it');
    ctl.release();
    await a.flush();
    const b = await BlobAuthState.load({ blobs: ctl.blobs, sessionId: id, epoch: 2, isCurrent: always, logger });
    assert.deepEqual((await b.state.keys.get('session', ['x.0']))['x.0'], Buffer.from('s5'));
    assert.deepEqual((await b.state.keys.get('sender-key', ['g.0']))['g.0'], Buffer.from('k3'));
  });

  test('durable() waits through a failing store and rejects once writes were fenced out', async (t) => {
    const ctl = controllable(await LocalBlobStore.create((await tempDir(t)).path));
    const id = sid();
    let current = true;
    const a = await BlobAuthState.load({ blobs: ctl.blobs, sessionId: id, epoch: 1, isCurrent: async () => current, logger, writeBehind: true, onBackgroundError: () => undefined });
    ctl.failNext(2);
    await a.state.keys.set({ session: { 'x.0': Buffer.from('f1') } });
    await a.durable(); // resolved only after the retries landed it
    const b = await BlobAuthState.load({ blobs: ctl.blobs, sessionId: id, epoch: 2, isCurrent: always, logger });
    assert.deepEqual((await b.state.keys.get('session', ['x.0']))['x.0'], Buffer.from('f1'));
    current = false;
    await a.state.keys.set({ session: { 'x.0': Buffer.from('f2') } });
    await assert.rejects(a.durable(), { code: 'STALE_EPOCH' });
    await assert.rejects(a.durable(), { code: 'STALE_EPOCH' });
  });

  test('compaction runs beside the writes: a send after the compacting write waits neither for the snapshot nor for removing what it supersedes', async (t) => {
    const inner = await LocalBlobStore.create((await tempDir(t)).path);
    const ctl = controllable(inner);
    const id = sid();
    const a = await BlobAuthState.load({ blobs: ctl.blobs, sessionId: id, epoch: 1, isCurrent: always, logger, writeBehind: true, compactEvery: 4, random: () => 0.5 });
    // The injected delays: compaction's snapshot put, then its list of the objects the snapshot supersedes, are each
    // held until released. (Without holding the put, whether the two sends after the 4th write ran before or after the
    // compaction reached its list was a race: a slow fsync of the snapshot lost it in CI.)
    ctl.holdSnapshots();
    ctl.holdLists();
    t.after(() => {
      ctl.releaseSnapshots();
      ctl.releaseLists();
    });
    const send = async (i: number, held: string): Promise<void> => {
      await a.state.keys.set({ session: { 'x.0': Buffer.from(`r${i}`) } });
      await withTimeout(a.durable(), 5_000, () => new Error(`send ${i} waited for the compaction held at its ${held}`));
    };
    for (let i = 0; i < 4; i++) await send(i, 'snapshot');
    // The 4th write started the compaction; it is held at its snapshot's put.
    for (let i = 4; i < 6; i++) await send(i, 'snapshot');
    assert.equal(ctl.heldLists(), 0, 'the compaction has not passed its snapshot');
    ctl.releaseSnapshots();
    await withTimeout(ctl.listHeld(), 5_000, () => new Error('the compaction never reached its list'));
    await send(6, 'list');
    assert.equal(ctl.heldLists(), 1, 'the compaction started once and is held at its list');
    const objects = await inner.list(authPrefix(id));
    assert.equal(objects.filter((k) => k.endsWith('-snap.json')).length, 2, 'the fencing snapshot and the compaction\'s, both kept while it is held');
    ctl.releaseLists();
    await a.flush();
    const after = await inner.list(authPrefix(id));
    assert.ok(after.length < objects.length, `the compaction removed what its snapshot supersedes (${objects.length} -> ${after.length})`);
    assert.ok(after[0]?.endsWith('-snap.json'), 'the oldest object left is the compaction\'s snapshot');
    const b = await BlobAuthState.load({ blobs: inner, sessionId: id, epoch: 2, isCurrent: always, logger });
    assert.deepEqual((await b.state.keys.get('session', ['x.0']))['x.0'], Buffer.from('r6'), 'the newest step is restored: the logs after the snapshot count');
  });

  test('a fenced-out background write stops writing: reported, flush rejects, nothing stored', async (t) => {
    const blobs = await LocalBlobStore.create((await tempDir(t)).path);
    const id = sid();
    let current = true;
    const errors: unknown[] = [];
    const a = await BlobAuthState.load({ blobs, sessionId: id, epoch: 4, isCurrent: async () => current, logger, writeBehind: true, onBackgroundError: (e) => errors.push(e) });
    current = false;
    await a.state.keys.set({ session: { s: Buffer.from('late') } });
    await assert.rejects(a.flush(), { code: 'STALE_EPOCH' });
    assert.equal((errors[0] as { code?: string }).code, 'STALE_EPOCH');
    await assert.rejects(a.state.keys.set({ session: { s: Buffer.from('later') } }) as Promise<void>, { code: 'STALE_EPOCH' });
    const b = await BlobAuthState.load({ blobs, sessionId: id, epoch: 5, isCurrent: always, logger });
    assert.deepEqual(await b.state.keys.get('session', ['s']), {});
  });
});

describe('BlobAuthState journal (a store that can append: the local one)', () => {
  const ratchet = async (a: BlobAuthState, value: string): Promise<void> => {
    await a.state.keys.set({ session: { 'x.0': Buffer.from(value) } });
  };
  const restored = async (blobs: BlobStore, id: string, epoch: number): Promise<string | undefined> => {
    const b = await BlobAuthState.load({ blobs, sessionId: id, epoch, isCurrent: always, logger });
    return (await b.state.keys.get('session', ['x.0']))['x.0']?.toString();
  };

  test("a cycle's batches are appended to one journal (no object per batch) and restored in order", async (t) => {
    const blobs = await LocalBlobStore.create((await tempDir(t)).path);
    const id = sid();
    const a = await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger });
    for (let i = 1; i <= 10; i++) await ratchet(a, `r${i}`);
    const keys = await blobs.list(authPrefix(id));
    assert.deepEqual(keys.map((k) => k.slice(authPrefix(id).length)), ['0000000000000001-0000000000000001-snap.json', '0000000000000001-0000000000000002-journal.jsonl']);
    const lines = (await blobs.get(keys[1] ?? ''))?.toString().split('\n');
    assert.equal(lines?.length, 11, 'ten records, each a whole line');
    assert.equal(await restored(blobs, id, 2), 'r10');
  });

  test('a torn last record is skipped (its append never completed); a damaged record before the last stops the load', async (t) => {
    const blobs = await LocalBlobStore.create((await tempDir(t)).path);
    const id = sid();
    const a = await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger });
    for (let i = 1; i <= 3; i++) await ratchet(a, `r${i}`);
    const journal = (await blobs.list(authPrefix(id))).find((k) => k.endsWith('-journal.jsonl')) ?? '';
    const whole = (await blobs.get(journal)) ?? Buffer.alloc(0);
    // A prefix of a fourth record (no newline yet), as a crash mid-append leaves.
    await blobs.append?.(journal, whole.subarray(0, 40));
    assert.equal(await restored(blobs, id, 2), 'r3');

    // The third record's bytes damaged with its newline in place (written out of order, then the crash): also the last.
    const other = sid();
    const c = await BlobAuthState.load({ blobs, sessionId: other, epoch: 1, isCurrent: always, logger });
    for (let i = 1; i <= 3; i++) await ratchet(c, `r${i}`);
    const cj = (await blobs.list(authPrefix(other))).find((k) => k.endsWith('-journal.jsonl')) ?? '';
    const lines = ((await blobs.get(cj)) ?? Buffer.alloc(0)).toString().split('\n');
    const damage = (line: string): string => `${line.slice(0, 20)}X${line.slice(21)}`;
    // Damage before the last record is corruption: refused, never skipped (and the refused load wrote nothing).
    await blobs.put(cj, Buffer.from([lines[0], damage(lines[1] ?? ''), lines[2], ''].join('\n')));
    await assert.rejects(BlobAuthState.load({ blobs, sessionId: other, epoch: 2, isCurrent: always, logger }), /damaged record at line 2/);
    await blobs.put(cj, Buffer.from([lines[0], lines[1], damage(lines[2] ?? ''), ''].join('\n')));
    assert.equal(await restored(blobs, other, 2), 'r2', 'the damaged last record is skipped');
  });

  test('a failed append may leave a torn line: the retry and the later batches go to a new journal, nothing acknowledged is lost', async (t) => {
    const inner = await LocalBlobStore.create((await tempDir(t)).path);
    let tear = false;
    // The injected failure: the append writes part of its record, then fails (a disk full mid-write).
    const blobs = new Proxy(inner, {
      get(target, prop) {
        if (prop === 'append') {
          return async (key: string, data: Uint8Array): Promise<void> => {
            if (!tear) return await target.append(key, data);
            tear = false;
            await target.append(key, data.subarray(0, Math.floor(data.length / 2)));
            throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          };
        }
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const id = sid();
    const a = await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger });
    await ratchet(a, 'r1');
    tear = true;
    await ratchet(a, 'r2'); // resolves once the retry landed
    await ratchet(a, 'r3');
    const journals = (await inner.list(authPrefix(id))).filter((k) => k.endsWith('-journal.jsonl'));
    assert.equal(journals.length, 2, 'the torn journal, then a new one for the retry');
    assert.equal(await restored(inner, id, 2), 'r3');
  });

  test('a compaction starts a new journal; the old one is removed with what the snapshot supersedes', async (t) => {
    const blobs = await LocalBlobStore.create((await tempDir(t)).path);
    const id = sid();
    const a = await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger, compactEvery: 4, random: () => 0.5 });
    for (let i = 1; i <= 6; i++) await ratchet(a, `r${i}`);
    await a.flush();
    const names = (await blobs.list(authPrefix(id))).map((k) => k.slice(authPrefix(id).length));
    // seq 1: the fencing snapshot; 2-5: four records in the first journal; 6: the compaction's snapshot; 7-8: the new journal.
    assert.deepEqual(names, ['0000000000000001-0000000000000006-snap.json', '0000000000000001-0000000000000007-journal.jsonl']);
    assert.equal(await restored(blobs, id, 2), 'r6');
  });

  test('the same owner loading again continues above the seqs of its journal (named by its first record)', async (t) => {
    const blobs = await LocalBlobStore.create((await tempDir(t)).path);
    const id = sid();
    const a = await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger });
    for (let i = 1; i <= 5; i++) await ratchet(a, `r${i}`); // records 2-6 in the journal named 2
    await a.close();
    const again = await BlobAuthState.load({ blobs, sessionId: id, epoch: 1, isCurrent: always, logger });
    assert.ok((await blobs.list(authPrefix(id))).some((k) => k.endsWith('-0000000000000007-snap.json')), 'its snapshot follows the last record (seq 6), not the journal name (2)');
    await ratchet(again, 'r6');
    assert.equal(await restored(blobs, id, 2), 'r6');
  });
});

/**
 * The one conformance suite of SessionDirectory. Every implementation must pass it unchanged.
 * `elapse(ms)` lets lease time pass: a real sleep for Redis, a fake clock for the in-process directory.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { SessionDirectory } from '@wagw/shared';

export interface DirectoryUnderTest {
  directory: SessionDirectory;
  elapse(ms: number): Promise<void>;
}
export type DirectoryFactory = (t: TestContext) => Promise<DirectoryUnderTest>;

const TTL = 600;

export function directoryConformance(name: string, factory: DirectoryFactory): void {
  describe(`SessionDirectory conformance: ${name}`, () => {
    test('two contenders: exactly one owns the session, the other is told who holds it', async (t) => {
      const { directory } = await factory(t);
      const results = await Promise.all(['host-a/0', 'host-a/1', 'host-b/0', 'host-b/1'].map((o) => directory.claim('s1', o, TTL)));
      const winners = results.filter((r) => r.ok);
      assert.equal(winners.length, 1, 'exactly one claim succeeds');
      const winner = winners[0];
      assert.ok(winner?.ok);
      for (const r of results) {
        if (!r.ok) assert.deepEqual(r.holder, winner.lease, 'a refused claim reports the live holder');
      }
      assert.deepEqual(await directory.get('s1'), winner.lease);
      assert.equal(await directory.isCurrent('s1', winner.lease.epoch), true);
    });

    test('a claim returns the owner, a positive epoch and an expiry about ttl from now', async (t) => {
      const { directory } = await factory(t);
      const before = Date.now();
      const r = await directory.claim('s1', 'host-a/0', 5000);
      assert.ok(r.ok);
      assert.equal(r.lease.sessionId, 's1');
      assert.equal(r.lease.owner, 'host-a/0');
      assert.ok(r.lease.epoch >= 1);
      assert.ok(Math.abs(r.lease.expiresAt - (before + 5000)) < 1000, `expiresAt ${r.lease.expiresAt} near now + 5000`);
      assert.equal(await directory.get('unknown'), null);
      assert.equal(await directory.isCurrent('unknown', 1), false);
    });

    test('re-claiming by the holder bumps the epoch and fences the old one out', async (t) => {
      const { directory } = await factory(t);
      const first = await directory.claim('s1', 'host-a/0', TTL);
      const second = await directory.claim('s1', 'host-a/0', TTL);
      assert.ok(first.ok && second.ok);
      assert.ok(second.lease.epoch > first.lease.epoch);
      const stale = first.lease.epoch;
      assert.equal(await directory.isCurrent('s1', stale), false, 'isCurrent refuses the stale epoch');
      assert.deepEqual(await directory.renew('host-a/0', [{ sessionId: 's1', epoch: stale }], TTL), ['s1'], 'renew refuses it');
      assert.equal(await directory.release('s1', 'host-a/0', stale), false, 'release refuses it');
      assert.equal(await directory.isCurrent('s1', second.lease.epoch), true, 'the current epoch is untouched');
    });

    test('a stranger cannot renew or release a live lease', async (t) => {
      const { directory } = await factory(t);
      const r = await directory.claim('s1', 'host-a/0', TTL);
      assert.ok(r.ok);
      assert.deepEqual(await directory.renew('host-b/0', [{ sessionId: 's1', epoch: r.lease.epoch }], TTL), ['s1']);
      assert.equal(await directory.release('s1', 'host-b/0', r.lease.epoch), false);
      assert.equal(await directory.isCurrent('s1', r.lease.epoch), true);
    });

    test('an expired lease is claimed by another owner with a higher epoch; the old owner is fenced', async (t) => {
      const { directory, elapse } = await factory(t);
      const a = await directory.claim('s1', 'host-a/0', 200);
      assert.ok(a.ok);
      const refused = await directory.claim('s1', 'host-b/0', 200);
      assert.equal(refused.ok, false, 'not claimable while live');
      await elapse(350);
      assert.equal(await directory.get('s1'), null, 'a lapsed lease reads as absent');
      assert.equal(await directory.isCurrent('s1', a.lease.epoch), false);
      const b = await directory.claim('s1', 'host-b/0', TTL);
      assert.ok(b.ok);
      assert.ok(b.lease.epoch > a.lease.epoch, 'the new epoch is higher');
      assert.equal(await directory.isCurrent('s1', a.lease.epoch), false);
      assert.deepEqual(await directory.renew('host-a/0', [{ sessionId: 's1', epoch: a.lease.epoch }], TTL), ['s1']);
      assert.equal(await directory.release('s1', 'host-a/0', a.lease.epoch), false);
      assert.equal((await directory.get('s1'))?.owner, 'host-b/0');
    });

    test('an expired lease is not renewed, even with no new owner', async (t) => {
      const { directory, elapse } = await factory(t);
      const a = await directory.claim('s1', 'host-a/0', 200);
      assert.ok(a.ok);
      await elapse(350);
      assert.deepEqual(await directory.renew('host-a/0', [{ sessionId: 's1', epoch: a.lease.epoch }], TTL), ['s1']);
      assert.equal(await directory.isCurrent('s1', a.lease.epoch), false);
    });

    test('the epoch never decreases: not after release, not after expiry', async (t) => {
      const { directory, elapse } = await factory(t);
      const epochs: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await directory.claim('s1', `host-${i}/0`, TTL);
        assert.ok(r.ok);
        epochs.push(r.lease.epoch);
        assert.equal(await directory.release('s1', `host-${i}/0`, r.lease.epoch), true);
        assert.equal(await directory.get('s1'), null);
        assert.equal(await directory.isCurrent('s1', r.lease.epoch), false, 'a released epoch is not current');
        assert.equal(await directory.release('s1', `host-${i}/0`, r.lease.epoch), false, 'release is not repeated');
      }
      const short = await directory.claim('s1', 'host-x/0', 150);
      assert.ok(short.ok);
      epochs.push(short.lease.epoch);
      await elapse(300);
      const after = await directory.claim('s1', 'host-y/0', TTL);
      assert.ok(after.ok);
      epochs.push(after.lease.epoch);
      for (let i = 1; i < epochs.length; i++) assert.ok((epochs[i] ?? 0) > (epochs[i - 1] ?? 0), `epochs grow: ${epochs.join(', ')}`);
      const other = await directory.claim('s2', 'host-x/0', TTL);
      assert.ok(other.ok, 'epochs are per session');
    });

    test('renew extends live leases in one batch and returns exactly the lost ids', async (t) => {
      const { directory, elapse } = await factory(t);
      const owner = 'host-a/0';
      const held = [];
      for (const id of ['s1', 's2', 's3', 's4']) {
        const r = await directory.claim(id, owner, TTL);
        assert.ok(r.ok);
        held.push(r.lease);
      }
      const [l1, l2, l3, l4] = held;
      assert.ok(l1 && l2 && l3 && l4);
      assert.equal(await directory.release('s2', owner, l2.epoch), true);
      const retaken = await directory.claim('s3', owner, TTL); // s3 now runs at a newer epoch
      assert.ok(retaken.ok);
      const lost = await directory.renew(
        owner,
        [
          { sessionId: 's1', epoch: l1.epoch },
          { sessionId: 's2', epoch: l2.epoch },
          { sessionId: 's3', epoch: l3.epoch },
          { sessionId: 's4', epoch: l4.epoch },
          { sessionId: 'never-claimed', epoch: 1 },
        ],
        TTL,
      );
      assert.deepEqual([...lost].sort(), ['never-claimed', 's2', 's3']);
      await elapse(400);
      assert.deepEqual(await directory.renew(owner, [{ sessionId: 's1', epoch: l1.epoch }], TTL), []);
      await elapse(400); // 800 ms after the claim: alive only because it was renewed
      assert.equal(await directory.isCurrent('s1', l1.epoch), true, 'renewed lease outlives its first TTL');
      assert.equal(await directory.isCurrent('s4', l4.epoch), false, 'the lease not renewed the second time lapsed');
      assert.deepEqual(await directory.renew(owner, [], TTL), []);
    });

    test('renew handles a batch larger than one script call', async (t) => {
      const { directory } = await factory(t);
      const refs = [];
      for (let i = 0; i < 1100; i++) {
        const r = await directory.claim(`bulk-${i}`, 'host-a/0', 5000);
        assert.ok(r.ok);
        refs.push({ sessionId: r.lease.sessionId, epoch: i === 1050 ? r.lease.epoch + 7 : r.lease.epoch });
      }
      assert.deepEqual(await directory.renew('host-a/0', refs, 5000), ['bulk-1050']);
    });

    test('listByOwner returns the live leases of one owner, sorted, and forgets lost ones', async (t) => {
      const { directory, elapse } = await factory(t);
      const c = await directory.claim('s-c', 'host-a/0', TTL);
      const a = await directory.claim('s-a', 'host-a/0', TTL);
      const b = await directory.claim('s-b', 'host-b/0', TTL);
      const short = await directory.claim('s-short', 'host-a/0', 150);
      assert.ok(a.ok && b.ok && c.ok && short.ok);
      assert.deepEqual(await directory.listByOwner('host-a/0'), [a.lease, c.lease, short.lease]);
      assert.deepEqual(await directory.listByOwner('host-b/0'), [b.lease]);
      assert.deepEqual(await directory.listByOwner('nobody'), []);
      assert.equal(await directory.release('s-c', 'host-a/0', c.lease.epoch), true);
      await elapse(300);
      const taken = await directory.claim('s-short', 'host-b/0', TTL);
      assert.ok(taken.ok);
      assert.deepEqual(
        (await directory.listByOwner('host-a/0')).map((l) => l.sessionId),
        ['s-a'],
        'released and expired-then-taken leases are gone',
      );
      assert.deepEqual((await directory.listByOwner('host-b/0')).map((l) => l.sessionId), ['s-b', 's-short']);
    });

    test('a bad TTL is refused', async (t) => {
      const { directory } = await factory(t);
      await assert.rejects(directory.claim('s1', 'host-a/0', 0), RangeError);
      await assert.rejects(directory.claim('s1', 'host-a/0', 1.5), RangeError);
      await assert.rejects(directory.renew('host-a/0', [], -1), RangeError);
      await directory.ping();
    });
  });
}

// Fast provisioning (issue #17, bench/provision.ts) stays honest: sessions minted without a QR (credentials,
// a device registered through the simulator's admin API, auth state written by the gateway's BlobAuthState,
// a desired=running row) are restored by a starting router, connect without any pairing, send and receive.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRootLogger, loadConfig } from '@wagw/shared';
import { openStores } from '@wagw/stores';
import { PROVISION_PREKEYS, provisionSessions } from '../../bench/provision.ts';
import { tempDir, waitFor } from '../harness/index.ts';
import { productionStores, sessionTestEnv, startGateway, startSim } from './helpers.ts';

describe('provisioned sessions (bench/provision.ts)', () => {
  test('connect at router start without a QR, send and receive', async (t) => {
    const dir = await tempDir(t);
    const [{ sim, env: simEnv }, prod] = await Promise.all([startSim(t, dir.path), productionStores(t)]);
    const env = sessionTestEnv(dir.path, { ...simEnv, ...prod.env });
    const config = loadConfig(env);
    const logger = createRootLogger({ proc: 'test', level: config.logLevel });
    const stores = await openStores(config, logger, { redisPrefix: prod.redisPrefix });
    const ids = ['prov-0', 'prov-1', 'prov-2'];
    let progress = 0;
    let provisioned;
    try {
      provisioned = await provisionSessions({ adminUrl: sim.urls.admin, blobs: stores.blobs, sql: stores.sql, logger, ids, batch: 2, onProgress: (n) => (progress = n) });
    } finally {
      await stores.close();
    }
    assert.equal(progress, ids.length, 'progress reported per batch up to the total');
    assert.deepEqual(provisioned.map((p) => p.id), ids);

    const gw = await startGateway(t, { env, redisPrefix: prod.redisPrefix });
    for (const p of provisioned) {
      const s = await gw.api.waitStatus(p.id, 'connected', 60_000);
      assert.equal(s.me?.jid, `${p.number}@s.whatsapp.net`, 'the session is the provisioned account');
    }
    assert.equal(sim.snapshot().pairings, 0, 'no QR or code pairing happened');
    // A relogin from stored state uploads no prekeys: the simulator already holds the ones provisioning minted
    // (more than Baileys' MIN_PREKEY_COUNT), and the newest of them is in the session's key store.
    assert.equal(sim.snapshot().preKeyUploads, 0, 'no prekey upload at login');
    for (const p of provisioned) {
      const dev = sim.devices().find((d) => d.jid === p.jid);
      assert.equal(dev?.preKeys, PROVISION_PREKEYS, `${p.jid} holds the provisioned prekeys`);
    }
    assert.equal(sim.snapshot().concurrentLoginViolations, 0);

    // Send: the first session to a plain phone.
    const peer = sim.createPhone({ name: 'peer' });
    const sent = await gw.api.post<{ id: string }>(`/api/v1/sessions/${ids[0]}/messages`, { to: peer.jid, type: 'text', text: 'hello from a provisioned session' });
    assert.equal(sent.status, 201, sent.raw.toString());
    const got = await peer.waitForMessage((m) => m.id === sent.body.id, 30_000);
    assert.equal(got.error, undefined, 'decrypted by the phone');
    assert.equal(got.message?.conversation ?? got.message?.extendedTextMessage?.text, 'hello from a provisioned session');

    // Receive: the phone writes back; the gateway stores the decrypted message.
    const own = provisioned[0]!;
    const reply = await peer.sendText(`${own.number}@s.whatsapp.net`, 'and back');
    const stored = await waitFor(
      async () => {
        const r = await gw.api.get<{ text?: string; fromMe?: boolean }>(`/api/v1/sessions/${ids[0]}/messages/${reply.id}`);
        return r.status === 200 ? r.body : null;
      },
      { what: 'the reply stored by the provisioned session', timeoutMs: 30_000, intervalMs: 100 },
    );
    assert.equal(stored.fromMe, false);
    assert.equal(stored.text, 'and back');

    // First contact from a phone: it has no Signal session with the second provisioned device, so it takes that
    // device's bundle from the simulator (identity, signed prekey and one provisioned one-time prekey). The
    // gateway decrypting this pkmsg proves the public keys registered at provisioning match the private ones in
    // the stored auth state.
    const second = provisioned[1]!;
    const stranger = sim.createPhone({ name: 'stranger' });
    const first = await stranger.sendText(`${second.number}@s.whatsapp.net`, 'first contact');
    const firstStored = await waitFor(
      async () => {
        const r = await gw.api.get<{ text?: string }>(`/api/v1/sessions/${ids[1]}/messages/${first.id}`);
        return r.status === 200 ? r.body : null;
      },
      { what: 'the first-contact message stored by a provisioned session', timeoutMs: 30_000, intervalMs: 100 },
    );
    assert.equal(firstStored.text, 'first contact');
    assert.equal(sim.devices().find((d) => d.jid === second.jid)?.preKeys, PROVISION_PREKEYS - 1, 'the stranger used one provisioned prekey');
    assert.equal(sim.snapshot().preKeyUploads, 0, 'still no prekey upload (count above the low mark)');
    // Stop here, not in the cleanup: t.after hooks run in the order registered, so the database (registered
    // first) would be dropped WITH (FORCE) under the gateway's open connections (57P01 on its pool).
    await gw.stop();
  });

});

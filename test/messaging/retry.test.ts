// Baileys' retry requests are answered from PostgreSQL: a phone that cannot decrypt a message the gateway sent
// asks for it again with a retry receipt; the shard's `getMessage` fetches the stored proto from the router
// (`message.get`) and the message is encrypted again on a fresh session. The session is restarted before the
// retry arrives, so Baileys' in-memory cache of recent sends cannot serve it. A message whose stored proto is
// gone is a miss: nothing is re-sent (never an empty message).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tempDir } from '../harness/index.ts';
import { pairByQr, sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';

describe('messaging: retry receipts', () => {
  test('a phone that could not decrypt gets the message again from the store; a miss sends nothing', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '1', SEND_PER_RECIPIENT_INTERVAL_MS: '0' }) });
    const owner = sim.createPhone({ number: '6281234567871', name: 'Owner' });
    const fitri = sim.createPhone({ number: '6281234567872', name: 'Fitri' });
    await pairByQr(gw.api, sim, owner, 'rt');
    const send = async (text: string): Promise<string> => {
      const r = await gw.api.post<{ id: string }>('/api/v1/sessions/rt/messages', { to: fitri.jid, type: 'text', text });
      assert.equal(r.status, 201, r.raw.toString());
      return r.body.id;
    };
    const warm = await send('warm-up');
    await fitri.waitForMessage((m) => m.id === warm && m.error === undefined);

    const companion = owner.linkedDevices()[0];
    assert.ok(companion);
    fitri.holdRetries = true;
    await fitri.forgetSession(companion.pnJid);
    const kept = await send('served from the store');
    await fitri.waitForMessage((m) => m.id === kept && m.error !== undefined);
    await fitri.forgetSession(companion.pnJid);
    const lost = await send('its stored proto is gone');
    await fitri.waitForMessage((m) => m.id === lost && m.error !== undefined);
    await gw.stores.sql.query(`UPDATE messages SET raw = NULL WHERE session_id = 'rt' AND id = $1`, [lost]);

    // A new socket: Baileys' cache of recent sends is empty, only getMessage can answer.
    assert.equal((await gw.api.post('/api/v1/sessions/rt/restart', {})).status, 200);
    await gw.api.waitStatus('rt', 'connected');
    assert.equal(fitri.releaseRetries(), 2);

    const again = await fitri.waitForMessage((m) => m.id === kept && m.error === undefined, 20_000);
    assert.equal(again.message?.conversation ?? again.message?.extendedTextMessage?.text, 'served from the store');
    // The miss: a retry for `lost` finds no stored proto, so nothing (least of all an empty message) is sent.
    await new Promise((r) => setTimeout(r, 1_500));
    t.diagnostic(JSON.stringify(fitri.received().filter((m) => m.id === lost || m.id === kept).map((m) => [m.id === kept ? 'kept' : 'lost', m.error ?? 'ok'])));
    const copies = fitri.received().filter((m) => m.id === lost);
    assert.ok(copies.every((m) => m.error !== undefined), 'a message without a stored proto was re-sent');
  });
});

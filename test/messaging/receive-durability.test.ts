// Receive durability: the shard sends a message's delivery receipt only after the router committed it
// (Baileys' `beforeReceipt` hook, patches/). While PostgreSQL holds the router's insert back, the phone sees no
// receipt; the owning shard is then SIGKILLed with the message decrypted but not stored, and after recovery
// WhatsApp's re-delivery stores it exactly once and the receipt follows. `npm run test:chaos` is the load
// version (200 messages). Eager media is fetched after the commit: a download that hangs delays neither the
// receipt nor the next message.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import pg from 'pg';
import { tempDir, waitFor } from '../harness/index.ts';
import { pairByQr, productionStores, sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';

describe('messaging: receive durability', () => {
  test('no delivery receipt before the row is committed; a shard killed in between loses nothing', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const prod = await productionStores(t);
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, ...prod.env, SHARD_COUNT: '1' }), redisPrefix: prod.redisPrefix });
    const owner = sim.createPhone({ number: '6281234567861', name: 'Owner' });
    const eko = sim.createPhone({ number: '6281234567862', name: 'Eko' });
    await pairByQr(gw.api, sim, owner, 'dur');
    const stored = async (id: string): Promise<number> =>
      (await gw.stores.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE session_id = 'dur' AND id = $1`, [id])).rows[0]?.n ?? 0;

    const first = await eko.sendText(owner.jid, 'one');
    await eko.waitForStatus(first.id, 'delivered', 20_000);
    assert.equal(await stored(first.id), 1);

    // Hold every insert into messages (SHARE ROW EXCLUSIVE conflicts with INSERT's ROW EXCLUSIVE).
    const lock = new pg.Client({ connectionString: prod.env['DATABASE_URL'] });
    lock.on('error', () => undefined); // the database is dropped (connections terminated) at clean-up
    await lock.connect();
    t.after(() => lock.end().catch(() => undefined));
    await lock.query('BEGIN');
    await lock.query('LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE');
    const second = await eko.sendText(owner.jid, 'two');
    // The shard decrypted it and the router's insert is waiting for the lock.
    await waitFor(
      async () => {
        const r = await lock.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = 'messages'::regclass`);
        return (r.rows[0]?.n ?? 0) > 0;
      },
      { what: "the router's insert to wait for the lock", timeoutMs: 20_000, intervalMs: 50 },
    );
    // The simulator keeps a stanza queued for a device until that device's receipt (or ack) for it arrives.
    // (Eko's own status shows 'delivered' at once: the owner's phone is a device of the account too.)
    const companion = owner.linkedDevices()[0];
    assert.ok(companion);
    const heldBack = (): boolean => companion.pending.has(`message:${second.id}`);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.ok(heldBack(), 'the gateway sent its delivery receipt before the message was stored');

    const pid = gw.router.supervisor.info(0)?.pid;
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await waitFor(() => gw.router.supervisor.info(0)?.pid !== pid, { what: 'the shard to restart', timeoutMs: 20_000 });
    await lock.query('ROLLBACK');
    await lock.end();

    await waitFor(() => !heldBack(), { what: 'the receipt of the re-delivered message', timeoutMs: 30_000, intervalMs: 100 });
    await waitFor(async () => (await stored(second.id)) === 1, { what: 'the second message stored', timeoutMs: 10_000, intervalMs: 100 });
    const rows = await gw.stores.sql.query<{ id: string; content: { text?: string } }>(`SELECT id, content FROM messages WHERE session_id = 'dur' AND from_me = false ORDER BY sent_at, id`);
    assert.deepEqual(rows.rows.map((r) => r.id).sort(), [first.id, second.id].sort());
    assert.equal(rows.rows.find((r) => r.id === second.id)?.content.text, 'two');
  });

  test('a message decrypted (ratchet step saved) but never stored is asked for again after a crash, not dropped', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const prod = await productionStores(t);
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, ...prod.env, SHARD_COUNT: '1' }), redisPrefix: prod.redisPrefix });
    const owner = sim.createPhone({ number: '6281234567865', name: 'Owner' });
    const gita = sim.createPhone({ number: '6281234567866', name: 'Gita' });
    await pairByQr(gw.api, sim, owner, 'lost');
    const warm = await gita.sendText(owner.jid, 'warm-up');
    await gita.waitForStatus(warm.id, 'delivered', 20_000);
    // The store refuses this one message: the shard decrypts it (its ratchet step goes to the auth state), the
    // router cannot insert it, so no receipt; then the shard dies.
    await gw.stores.sql.query(`CREATE FUNCTION refuse_lost() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql`);
    await gw.stores.sql.query(`CREATE TRIGGER refuse_lost BEFORE INSERT ON messages FOR EACH ROW WHEN (NEW.content->>'text' = 'refused once') EXECUTE FUNCTION refuse_lost()`);
    const retriesBefore = sim.stats.retriesToPhones;
    const lost = await gita.sendText(owner.jid, 'refused once');
    const companion = owner.linkedDevices()[0];
    assert.ok(companion);
    await new Promise((r) => setTimeout(r, 1_500));
    assert.ok(companion.pending.has(`message:${lost.id}`), 'receipted although it was not stored');
    const pid = gw.router.supervisor.info(0)?.pid;
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await gw.stores.sql.query(`DROP TRIGGER refuse_lost ON messages`);
    // Re-delivered at the next login: its key was used already, so Baileys sends a retry receipt (patched: it
    // used to nack, and the server dropped the message) and the phone encrypts it again.
    await waitFor(async () => (await gw.api.get(`/api/v1/sessions/lost/messages/${lost.id}`)).status === 200, { what: 'the refused message stored after the crash', timeoutMs: 30_000, intervalMs: 100 });
    assert.ok(sim.stats.retriesToPhones > retriesBefore, 'the re-delivery decrypted without a retry: the ratchet step was not saved, so this did not test the retry path');
    await waitFor(() => !companion.pending.has(`message:${lost.id}`), { what: 'its receipt', timeoutMs: 10_000, intervalMs: 50 });
    const rows = await gw.stores.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE session_id = 'lost' AND id = $1`, [lost.id]);
    assert.equal(rows.rows[0]?.n, 1);
  });

  test('an eager media download that hangs holds back neither the receipt nor the next message', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    // A media host that accepts the connection and never answers (not even the TLS handshake).
    const open = new Set<net.Socket>();
    let accepted = 0;
    let firstClosed = false;
    const hang = net.createServer((sock) => {
      if (accepted++ === 0) sock.on('close', () => (firstClosed = true));
      open.add(sock);
      sock.on('close', () => open.delete(sock));
      sock.on('error', () => undefined);
    });
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    t.after(() => {
      for (const sock of open) sock.destroy();
      return new Promise<void>((r) => hang.close(() => r()));
    });
    const { port } = hang.address() as AddressInfo;
    // The hanging host stands in for the simulator's media host: inbound media is fetched from nowhere else.
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, WA_MEDIA_HOST: `127.0.0.1:${port}`, SHARD_COUNT: '1', INBOUND_MEDIA_DOWNLOAD: 'eager', MEDIA_FETCH_TIMEOUT_MS: '60000' }) });
    const owner = sim.createPhone({ number: '6281234567863', name: 'Owner' });
    const fajar = sim.createPhone({ number: '6281234567864', name: 'Fajar' });
    await pairByQr(gw.api, sim, owner, 'slow');
    const directPath = '/v/t62.7118-24/slow.enc';
    const image = await fajar.sendMessage(owner.jid, {
      imageMessage: { url: `https://127.0.0.1:${port}${directPath}`, directPath, mediaKey: randomBytes(32), mimetype: 'image/jpeg', fileSha256: randomBytes(32), fileEncSha256: randomBytes(32), fileLength: 1000, caption: 'slow' },
    });
    await waitFor(() => accepted > 0, { what: 'the media download to start', timeoutMs: 20_000, intervalMs: 20 });
    const next = await fajar.sendText(owner.jid, 'after the slow image');
    const stored = async (id: string): Promise<boolean> => (await gw.api.get(`/api/v1/sessions/slow/messages/${id}`)).status === 200;
    // The stalled TLS handshake ends only with MEDIA_FETCH_TIMEOUT_MS (60 s): a download on the receipt's path
    // could not let these rows in before it.
    await waitFor(async () => (await stored(next.id)) && (await stored(image.id)), { what: 'both messages stored while the download hangs', timeoutMs: 8_000, intervalMs: 50 });
    const downloadStillOpen = !firstClosed;
    const companion = owner.linkedDevices()[0];
    assert.ok(companion);
    await waitFor(() => !companion.pending.has(`message:${image.id}`) && !companion.pending.has(`message:${next.id}`), { what: 'both receipts', timeoutMs: 10_000, intervalMs: 20 });
    assert.ok(downloadStillOpen, 'the media download ended before both messages were stored: they waited for it');
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { WaSimulator } from '../src/index.ts';
import { startSim, TestClient, waitFor } from './helpers.ts';

describe('admin HTTP API and presence', () => {
  let sim: WaSimulator;
  let gw: TestClient;
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${sim.urls.admin}${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const json = (await res.json()) as T & { error?: string };
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${json.error ?? ''}`);
    return json;
  };
  before(async () => {
    sim = await startSim();
    gw = new TestClient(sim);
  });
  after(async () => {
    await gw.end();
    await sim.close();
  });

  it('POST /provision registers devices with their public keys in one call; bad bodies are 400', async () => {
    const key = (b: number): string => Buffer.alloc(32, b).toString('base64');
    const devices = [1, 2].map(b => ({
      noiseKey: key(b),
      identityKey: key(b + 10),
      registrationId: 4242,
      signedPreKey: { id: 7, public: key(b + 20), signature: Buffer.alloc(64, b).toString('base64') },
      preKeys: [{ id: 1, public: key(b + 30) }, { id: 2, public: key(b + 40) }],
    }));
    const out = await call<{ number: string; jid: string }[]>('POST', '/provision', { devices });
    assert.equal(out.length, 2);
    const listed = await call<{ jid: string; preKeys: number; platform: string }[]>('GET', '/devices');
    for (const o of out) assert.deepEqual(listed.filter(d => d.jid === o.jid).map(d => [d.preKeys, d.platform]), [[2, 'provisioned']]);
    // The bare form still works (placeholder Signal keys, no prekeys: such a device uploads at its first login).
    const bare = await call<{ jid: string }[]>('POST', '/provision', { noiseKeys: [key(3)] });
    assert.equal((await call<{ jid: string; preKeys: number }[]>('GET', '/devices')).find(d => d.jid === bare[0]?.jid)?.preKeys, 0);
    const bad = async (body: unknown): Promise<{ status: number; error: string }> => {
      const res = await fetch(`${sim.urls.admin}/provision`, { method: 'POST', body: JSON.stringify(body) });
      return { status: res.status, error: ((await res.json()) as { error: string }).error };
    };
    assert.deepEqual(await bad({}), { status: 400, error: '"noiseKeys" (base64 string[]) or "devices" (object[]) is required' });
    assert.deepEqual(await bad({ devices: [{ noiseKey: 'AAAA' }] }), { status: 400, error: 'devices[0].noiseKey must be 32 bytes, got 3' });
    assert.deepEqual(await bad({ devices: [{ ...devices[0], preKeys: [{ id: -1, public: key(1) }] }] }), { status: 400, error: 'devices[0].preKeys[0].id must be an integer in [0, 2^24)' });
  });

  it('pairs, sends, lists, kicks and reports over HTTP', async () => {
    const business = await call<{ number: string; jid: string }>('POST', '/phones', { name: 'Biz' });
    const customer = await call<{ number: string; jid: string }>('POST', '/phones', { number: '+49 151 0000 0001', name: 'Kunde' });
    assert.equal(customer.number, '4915100000001');
    gw.connect();
    const qr = await waitFor('qr', () => gw.qr);
    const linked = await call<{ jid: string }>('POST', `/phones/${business.number}/scan`, { qr });
    assert.equal(await gw.waitClose(), 515);
    gw.connect();
    await gw.waitOpen();
    assert.equal(gw.jid, linked.jid);

    const sent = await call<{ id: string }>('POST', `/phones/${customer.number}/send`, { to: business.number, text: 'via http' });
    await waitFor('upsert', () => gw.received(m => m.key.id === sent.id));
    const proto = await call<{ id: string }>('POST', `/phones/${customer.number}/send`, { to: business.jid, message: { extendedTextMessage: { text: 'proto json' } } });
    await waitFor('upsert 2', () => gw.received(m => m.key.id === proto.id && m.message?.extendedTextMessage?.text === 'proto json'));

    const reply = await gw.sock?.sendMessage(customer.jid, { text: 'answer' });
    await waitFor('received list', () => sim.phone(customer.number)?.received().some(m => m.id === reply?.key.id));
    const list = await call<Array<{ id: string; message: { conversation?: string; extendedTextMessage?: { text: string } }; receiptsSent: string[] }>>('GET', `/phones/${customer.number}/received`);
    const got = list.find(m => m.id === reply?.key.id);
    assert.equal(got?.message.conversation ?? got?.message.extendedTextMessage?.text, 'answer');
    await call('POST', `/phones/${customer.number}/read`, { ids: [reply?.key.id] });
    const sentList = await call<Array<{ id: string; status: string }>>('GET', `/phones/${customer.number}/sent`);
    assert.ok(sentList.some(s => s.id === sent.id));

    const fault = await call<{ id: number }>('POST', '/faults', { kind: 'latency', ms: 10 });
    assert.equal((await call<unknown[]>('GET', '/faults')).length, 1);
    await call('DELETE', `/faults/${fault.id}`);
    const stats = await call<{ socketsAuthenticated: number; concurrentLoginViolations: number }>('GET', '/stats');
    assert.equal(stats.socketsAuthenticated, 1);
    assert.equal(stats.concurrentLoginViolations, 0);
    const devices = await call<Array<{ jid: string; live: number }>>('GET', '/devices');
    assert.equal(devices.find(d => d.jid === gw.jid)?.live, 1);
    const cfg = await call<{ waWebSocketUrl: string; rootPublicKeyBase64: string }>('GET', '/config');
    assert.equal(cfg.waWebSocketUrl, sim.urls.ws);
    assert.equal(Buffer.from(cfg.rootPublicKeyBase64, 'base64').length, 32);

    // presence: the companion subscribes to the customer, the customer's phone goes online
    await gw.sock?.presenceSubscribe(customer.jid);
    const seen: string[] = [];
    gw.sock?.ev.on('presence.update', u => {
      for (const p of Object.values(u.presences)) seen.push(`${u.id}:${p.lastKnownPresence}`);
    });
    await call('POST', `/phones/${customer.number}/presence`, { type: 'available' });
    await waitFor('presence update', () => seen.includes(`${customer.jid}:available`));
    await gw.sock?.sendPresenceUpdate('composing', customer.jid);
    await waitFor('chatstate at the phone', () => sim.phone(customer.number)?.presences().some(p => p.type === 'composing'));

    await call('POST', `/devices/${encodeURIComponent(gw.jid)}/kick`, { mode: 'replaced' });
    assert.equal(await gw.waitClose(), 440);
  });
});

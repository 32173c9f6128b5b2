// The transport signs with node:crypto (a key object made once) instead of the standardwebhooks library's
// pure-JavaScript HMAC: every signature must still be the library's, byte for byte, and verify with it, for the
// backend's secret and a session endpoint's derived secret alike. And its deadline is a timer of its own.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { webhooks } from '@wagw/router';
import { SECRET, sessionWebhookSecret } from './helpers.ts';

const { WebhookTransport } = webhooks;

const bodies = [
  '{}',
  JSON.stringify({ id: 'evt_1', type: 'messages', sessionId: 'card-1', timestamp: '2026-12-04T00:00:00.000Z', data: { text: 'hello' } }),
  // multi-byte UTF-8: the MAC covers the body's UTF-8 bytes
  JSON.stringify({ id: 'evt_2', type: 'messages', data: { text: 'olá 👋 ß €', long: 'x'.repeat(5000) } }),
];

test('signatures equal the standardwebhooks library\'s and verify with it (backend and session endpoints)', (t) => {
  const transport = new WebhookTransport({ secret: SECRET, timeoutMs: 1000, maxSockets: 1 });
  t.after(() => transport.close());
  const at = new Date(Date.now() - 1234);
  for (const body of bodies) {
    const backend = transport.sign('evt_1', body, at);
    assert.equal(backend['webhook-signature'], new Webhook(SECRET).sign('evt_1', at, body));
    assert.equal(backend['webhook-timestamp'], String(Math.floor(at.getTime() / 1000)));
    assert.equal(backend['webhook-id'], 'evt_1');
    assert.ok(new Webhook(SECRET).verify(body, backend));

    const endpoint = 'https://hooks.example/card-1?x=1';
    const session = transport.sign('evt_1', body, at, { sessionId: 'card-1', endpoint });
    const derived = sessionWebhookSecret(SECRET, 'card-1', endpoint);
    assert.equal(session['webhook-signature'], new Webhook(derived).sign('evt_1', at, body));
    assert.ok(new Webhook(derived).verify(body, session));
    assert.throws(() => new Webhook(SECRET).verify(body, session), 'a session endpoint\'s signature does not verify with WEBHOOK_SECRET');
    assert.throws(() => new Webhook(sessionWebhookSecret(SECRET, 'card-2', endpoint)).verify(body, session), 'nor with another session\'s secret');
  }
});

test('a receiver that never answers: TIMEOUT after WEBHOOK_TIMEOUT_MS, and an answered delivery is not cut by its deadline later', async (t) => {
  const sockets = new Set<Socket>();
  let hang = true;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (!hang) res.writeHead(204).end();
    });
  });
  server.on('connection', (s) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const transport = new WebhookTransport({ secret: SECRET, timeoutMs: 300, maxSockets: 2 });
  t.after(() => transport.close());

  const t0 = performance.now();
  const timedOut = await transport.deliver({ endpoint, eventId: 'evt_h', body: '{}', publicOnly: false });
  const took = performance.now() - t0;
  assert.equal(timedOut.kind, 'network');
  assert.equal(timedOut.kind === 'network' ? timedOut.code : '', 'TIMEOUT');
  assert.ok(took >= 290 && took < 3000, `timed out after the deadline (${Math.round(took)} ms)`);

  hang = false;
  const ok = await transport.deliver({ endpoint, eventId: 'evt_ok', body: '{}', publicOnly: false });
  assert.equal(ok.kind, 'ok');
  // The kept-alive socket must survive past the answered request's deadline (a deadline left running would
  // destroy the request, and with it the pooled socket, 300 ms later).
  const socketsBefore = sockets.size;
  await new Promise((resolve) => setTimeout(resolve, 500));
  const again = await transport.deliver({ endpoint, eventId: 'evt_ok2', body: '{}', publicOnly: false });
  assert.equal(again.kind, 'ok');
  assert.equal(sockets.size, socketsBefore, 'the second delivery reused the kept-alive socket');
});

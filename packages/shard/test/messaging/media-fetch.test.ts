// Issue #10 items 1, 5 and 10: a send's media.url goes through the public-only client. Every server here is on
// loopback: 127.0.0.1 plays the "internal" host and 127.0.0.2 a "public" one (the tests' address table says
// so through `refusedAddress`; 127.0.0.1 is judged by the real table). Names resolve through an injected lookup.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isNonPublicAddress } from '@wagw/shared';
import type { BaseLookup, GatewayError, MessageSendParams } from '@wagw/shared';
import type { WASocket } from '@whiskeysockets/baileys';
import { ByteBudget } from '../../src/messaging/byte-budget.ts';
import { SendGovernor } from '../../src/messaging/governor.ts';
import { publicGet } from '../../src/messaging/public-http.ts';
import type { FetchFailure } from '../../src/messaging/public-http.ts';
import { AckTracker, fetchMedia, sendOne } from '../../src/messaging/send.ts';
import type { MediaLimits, SendDeps } from '../../src/messaging/send.ts';

interface Server {
  port: number;
  connections: number;
  requests: string[];
  closed: number;
  server: http.Server;
}

async function serve(host: string, handler: http.RequestListener): Promise<Server> {
  const s: Server = { port: 0, connections: 0, requests: [], closed: 0, server: http.createServer() };
  s.server.on('connection', () => s.connections++);
  s.server.on('request', (req, res) => {
    s.requests.push(req.url ?? '');
    res.on('close', () => s.closed++);
    handler(req, res);
  });
  await new Promise<void>((resolve) => s.server.listen(0, host, resolve));
  s.port = (s.server.address() as AddressInfo).port;
  return s;
}

const PUBLIC = '127.0.0.2';
let internal: Server;
let pub: Server;

const names: Record<string, string> = { 'internal.test': '127.0.0.1', 'cdn.test': PUBLIC };
const lookup: BaseLookup = (host, cb) => {
  const address = names[host];
  if (address === undefined) cb(Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' }), []);
  else cb(null, [{ address, family: 4 }]);
};
const limits = (over: Partial<MediaLimits> = {}): MediaLimits => ({
  maxBytes: 4096,
  fetchTimeoutMs: 2000,
  lookup,
  refusedAddress: (a) => a !== PUBLIC && isNonPublicAddress(a),
  ...over,
});

before(async () => {
  internal = await serve('127.0.0.1', (_req, res) => res.end('internal secret'));
  pub = await serve(PUBLIC, (req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/to-internal-ip')) res.writeHead(302, { location: `http://127.0.0.1:${internal.port}/secret` }).end();
    else if (url.startsWith('/to-internal-name')) res.writeHead(307, { location: `http://internal.test:${internal.port}/secret` }).end();
    else if (url.startsWith('/to-mapped')) res.writeHead(301, { location: `http://[::ffff:7f00:1]:${internal.port}/secret` }).end();
    else if (url.startsWith('/loop')) res.writeHead(302, { location: '/loop' }).end();
    else if (url.startsWith('/endless')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(1024, 1);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    } else if (url.startsWith('/slow')) res.writeHead(200).write('x'); // never ends
    else if (url.startsWith('/missing')) res.writeHead(404).end('no');
    else res.writeHead(200, { 'content-type': 'application/pdf' }).end('%PDF-1.4 ok');
  });
});
after(() => {
  internal.server.closeAllConnections();
  pub.server.closeAllConnections();
  internal.server.close();
  pub.server.close();
});

async function refusal(url: string, over: Partial<MediaLimits> = {}): Promise<GatewayError> {
  try {
    await fetchMedia(url, limits(over));
  } catch (err) {
    return err as GatewayError;
  }
  assert.fail(`${url} was fetched`);
}

describe('media.url: the public-only client (issue #10 item 1)', () => {
  it('refuses an internal host directly, by name, as an IPv4-mapped literal and through redirects, with one uniform 400 and no connection', async () => {
    const before = internal.connections;
    const urls = [
      `http://127.0.0.1:${internal.port}/secret`,
      `http://internal.test:${internal.port}/secret`,
      `http://[::ffff:127.0.0.1]:${internal.port}/secret`,
      `http://[::7f00:1]:${internal.port}/secret`,
      `http://localhost:${internal.port}/secret`,
      `http://169.254.169.254/latest/meta-data/`,
      `http://cdn.test:${pub.port}/to-internal-ip`,
      `http://cdn.test:${pub.port}/to-internal-name`,
      `http://cdn.test:${pub.port}/to-mapped`,
    ];
    const seen = new Set<string>();
    for (const url of urls) {
      const err = await refusal(url, { onConnect: (u) => assert.notEqual(u.port, String(internal.port), `${url}: connect attempted to ${u.href}`) });
      assert.equal(err.code, 'VALIDATION_FAILED', url);
      assert.equal(err.status, 400, url);
      seen.add(JSON.stringify({ message: err.message, details: err.details }));
    }
    // A closed port, a 404, a timeout, a redirect loop and credentials answer the very same error.
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, PUBLIC, r));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    for (const url of [`http://cdn.test:${closedPort}/`, `http://cdn.test:${pub.port}/missing`, `http://cdn.test:${pub.port}/loop`, `http://user:pw@cdn.test:${pub.port}/a.pdf`, `http://nowhere.test/`]) {
      seen.add(JSON.stringify({ message: (await refusal(url)).message, details: (await refusal(url)).details }));
    }
    seen.add(JSON.stringify({ message: (await refusal(`http://cdn.test:${pub.port}/slow`, { fetchTimeoutMs: 300 })).message.replace('300', '2000'), details: { field: 'media.url' } }));
    assert.equal(seen.size, 1, [...seen].join('\n'));
    assert.doesNotMatch([...seen][0] ?? '', /ECONNREFUSED|ENOTFOUND|127\.0\.0\.1|internal|404|timeout|redirect loop/i);
    assert.equal(internal.connections, before, 'the internal server was contacted');
  });

  it('fetches a public URL, and names the file even with a malformed %-escape (item 10)', async () => {
    const got = await fetchMedia(`http://cdn.test:${pub.port}/docs/a%ZZ.pdf`, limits());
    assert.equal(got.data.toString(), '%PDF-1.4 ok');
    assert.equal(got.mimetype, 'application/pdf');
    assert.equal(got.fileName, 'a%ZZ.pdf');
    assert.equal((await fetchMedia(`http://cdn.test:${pub.port}/r%C3%A9sum%C3%A9.pdf`, limits())).fileName, 'résumé.pdf');
  });

  it('destroys a download past MEDIA_MAX_BYTES (413), counted on the stream', async () => {
    const closedBefore = pub.closed;
    const err = await refusal(`http://cdn.test:${pub.port}/endless`);
    assert.equal(err.code, 'PAYLOAD_TOO_LARGE');
    // The server sees its response closed: the socket was destroyed, not drained.
    await new Promise<void>((resolve) => {
      const check = (): void => (pub.closed > closedBefore ? resolve() : void setTimeout(check, 10));
      check();
    });
  });

  it('MEDIA_URL_ALLOW_PRIVATE=true lets a loopback URL through (tests, private deployments)', async () => {
    const got = await fetchMedia(`http://127.0.0.1:${internal.port}/secret`, limits({ allowPrivate: true }));
    assert.equal(got.data.toString(), 'internal secret');
    // The injected lookup is the one used: the same name is fetched when private addresses are allowed...
    assert.equal((await fetchMedia(`http://internal.test:${internal.port}/secret`, limits({ allowPrivate: true }))).data.toString(), 'internal secret');
  });

  it('a name resolving inside is refused by the policy at lookup, before the connection (not a DNS failure)', async () => {
    const connections = internal.connections;
    const opts = { maxBytes: 100, timeoutMs: 2000, allowPrivate: false, lookup, refusedAddress: limits().refusedAddress };
    await assert.rejects(publicGet(`http://internal.test:${internal.port}/secret`, opts), (e: FetchFailure) => e.reason === 'refused' && /non-public/.test(e.message));
    await assert.rejects(publicGet(`http://cdn.test:${pub.port}/to-internal-name`, opts), (e: FetchFailure) => e.reason === 'refused');
    await assert.rejects(publicGet(`http://nowhere.test/`, opts), (e: FetchFailure) => e.reason === 'failed');
    assert.equal(internal.connections, connections);
  });
});

function sendDeps(governor: SendGovernor, budget: ByteBudget, media: MediaLimits): SendDeps {
  return {
    sessionId: 's1',
    socket: () => ({}) as WASocket,
    connected: () => true,
    acks: new AckTracker(),
    governor,
    blobs: { get: () => Promise.resolve(null) } as unknown as SendDeps['blobs'],
    media,
    mediaBudget: budget,
    ackTimeoutMs: 1000,
  };
}

const doc = (url: string): MessageSendParams => ({
  sessionId: 's1',
  request: { to: { jid: '6281@s.whatsapp.net' }, type: 'document', media: { url } } as unknown as MessageSendParams['request'],
});

describe('media sends are admitted before their media is fetched (issue #10 item 5)', () => {
  it('a full send queue refuses with QUEUE_FULL before the media URL is contacted', async () => {
    const governor = new SendGovernor({ ratePerSec: 1, burst: 1, perRecipientIntervalMs: 0, queueMax: 1, queueTimeoutMs: 60_000 });
    const held = governor.reserve(); // another send fetching its media holds the only place
    const requests = pub.requests.length;
    await assert.rejects(sendOne(doc(`http://cdn.test:${pub.port}/a.pdf`), sendDeps(governor, new ByteBudget(1 << 20), limits())), (e: GatewayError) => e.code === 'QUEUE_FULL');
    assert.equal(pub.requests.length, requests, 'the media URL was fetched although the send was refused');
    held.release();
    assert.doesNotThrow(() => governor.reserve().release());
  });

  it('the shard byte budget aborts a download that would exceed it (429), and gives every byte back', async () => {
    const governor = new SendGovernor({ ratePerSec: 0, burst: 1, perRecipientIntervalMs: 0, queueMax: 10, queueTimeoutMs: 60_000 });
    const budget = new ByteBudget(3000);
    const other = budget.open();
    other.take(2500); // bytes another send holds
    await assert.rejects(sendOne(doc(`http://cdn.test:${pub.port}/endless`), sendDeps(governor, budget, limits({ maxBytes: 1 << 20 }))), (e: GatewayError) => e.code === 'QUEUE_FULL' && e.status === 429);
    assert.equal(budget.used, 2500, 'the refused send kept bytes of the budget');
    other.release();
    assert.equal(budget.used, 0);
  });
});

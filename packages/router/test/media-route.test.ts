// GET /api/v1/sessions/:id/messages/:msgId/media through the real route (createApp, messageRoutes, the real
// migrations on PGlite) with a blob store that records what happens to each stream it opens (issue 10 item 6):
// non-Latin-1 file names get an RFC 6266 Content-Disposition with an ASCII fallback and filename*=UTF-8''…
// (they answered 500 before), the stored mimetype is validated and only plain image/audio/video types are
// served inline, and every opened blob stream is closed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { loadConfig } from '@wagw/shared';
import type { BlobStore, MessageMedia } from '@wagw/shared';
import { PgliteDatabase, migrate } from '@wagw/stores';
import { seedEmbeddedDb } from '../../../test/harness/index.ts';
import { Lifecycle, createApp } from '../src/app.ts';
import { messageRoutes } from '../src/api/messages-routes.ts';
import { contentDisposition, safeContentType } from '../src/api/media-headers.ts';
import { MessageStore } from '../src/messages/store.ts';
import { RouterMetrics } from '../src/metrics.ts';
import type { SessionManager } from '../src/sessions/manager.ts';
import type { ShardSupervisor } from '../src/supervisor.ts';
import { serve } from './security/helpers.ts';
import type { Served } from './security/helpers.ts';

const logger = pino({ level: 'silent' });
const BYTES = Buffer.from('%PDF-1.7 fake file bytes');

/** Blob streams handed out, to check each one is closed whatever the response was. */
const opened: Readable[] = [];
const blobs = {
  kind: 'local',
  getStream: async () => {
    const s = Readable.from([BYTES]);
    opened.push(s);
    return s;
  },
} as unknown as BlobStore;

describe('GET …/messages/:msgId/media', () => {
  let dir: string;
  let db: PgliteDatabase;
  let served: Served | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'wagw-media-route-'));
    await seedEmbeddedDb(dir);
    db = await PgliteDatabase.open({ dataDir: path.join(dir, 'pglite'), port: 0, logger });
    await migrate(db, { logger });
    const store = new MessageStore(db);
    const media: [string, MessageMedia][] = [
      ['CJK', { kind: 'document', mimetype: 'application/pdf', fileName: '報告.pdf' }],
      ['CYR', { kind: 'document', mimetype: 'application/pdf', fileName: 'Отчёт "итог" 2026.pdf' }],
      ['EMOJI', { kind: 'document', mimetype: 'application/pdf', fileName: 'party 🎉\r\nX-Evil: 1.pdf' }],
      ['HTML', { kind: 'document', mimetype: 'text/html', fileName: 'page.html' }],
      ['SVG', { kind: 'image', mimetype: 'image/svg+xml' }],
      ['JPEG', { kind: 'image', mimetype: 'IMAGE/JPEG' }],
      ['OPUS', { kind: 'audio', mimetype: 'audio/ogg; codecs=opus' }],
      ['BADTYPE', { kind: 'document', mimetype: 'text/html\r\nSet-Cookie: a=b', fileName: 'x.txt' }],
      ['NOTYPE', { kind: 'document', mimetype: '<script>', fileName: 'plain.bin' }],
    ];
    for (const [id, m] of media) {
      await store.insert('s1', { id, chat: 'a@s.whatsapp.net', from: 'a@s.whatsapp.net', fromMe: false, type: m.kind, timestamp: '2026-01-01T00:00:00.000Z', media: m }, 'received', undefined);
    }
    const lifecycle = new Lifecycle();
    lifecycle.markReady();
    const manager = { hostId: 'h1', ownership: async () => ({ kind: 'local', shard: 0 }) } as unknown as SessionManager;
    const shards = { call: () => Promise.reject(new Error('no shards')) } as unknown as Pick<ShardSupervisor, 'call'>;
    const app = createApp({
      logger,
      shards: { list: () => [], pendingCount: () => 0, call: () => Promise.reject(new Error('no shards')) },
      lifecycle,
      metrics: new RouterMetrics({ defaultMetrics: false }),
      hostId: 'h1',
      dependencies: async () => ({}),
      routes: messageRoutes({ manager, shards, sql: db, blobs, messaging: loadConfig({ NODE_ENV: 'test' }).messaging }),
    });
    served = await serve(app);
  });
  after(async () => {
    await served?.close();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = async (id: string) => {
    const res = await fetch(`${served?.base}/api/v1/sessions/s1/messages/${id}/media`);
    return { status: res.status, type: res.headers.get('content-type'), disposition: res.headers.get('content-disposition'), body: Buffer.from(await res.arrayBuffer()) };
  };

  it('serves non-Latin-1 file names with an ASCII fallback and filename*=UTF-8 (no 500)', async () => {
    const cjk = await get('CJK');
    assert.equal(cjk.status, 200, cjk.body.toString());
    assert.deepEqual(cjk.body, BYTES);
    assert.equal(cjk.type, 'application/pdf');
    assert.equal(cjk.disposition, `attachment; filename="__.pdf"; filename*=UTF-8''%E5%A0%B1%E5%91%8A.pdf`);
    const cyr = await get('CYR');
    assert.equal(cyr.status, 200);
    assert.equal(cyr.disposition, `attachment; filename="_____ ______ 2026.pdf"; filename*=UTF-8''${encodeURIComponent('Отчёт "итог" 2026.pdf')}`);
    // Emoji and a header injection attempt: control characters dropped, no second header.
    const emoji = await get('EMOJI');
    assert.equal(emoji.status, 200);
    assert.equal(emoji.disposition, `attachment; filename="party _X-Evil: 1.pdf"; filename*=UTF-8''party%20%F0%9F%8E%89X-Evil%3A%201.pdf`);
    // (PostgreSQL refuses a lone surrogate in jsonb, so only the function sees one: replaced, not a URIError.)
    assert.equal(contentDisposition('application/pdf', 'bad \ud800 half.pdf'), `attachment; filename="bad _ half.pdf"; filename*=UTF-8''bad%20%EF%BF%BD%20half.pdf`);
  });

  it('serves only plain image/audio/video types inline; others as attachments; a bad mimetype as application/octet-stream', async () => {
    const cases: [string, string, string][] = [
      ['HTML', 'text/html', 'attachment; filename="page.html"'],
      ['SVG', 'image/svg+xml', 'attachment'],
      ['JPEG', 'image/jpeg', 'inline'],
      ['OPUS', 'audio/ogg; codecs=opus', 'inline'],
      ['BADTYPE', 'application/octet-stream', 'attachment; filename="x.txt"'],
      ['NOTYPE', 'application/octet-stream', 'attachment; filename="plain.bin"'],
    ];
    for (const [id, type, disposition] of cases) {
      const r = await get(id);
      assert.deepEqual([r.status, r.type, r.disposition], [200, type, disposition], id);
    }
    assert.equal(safeContentType('application/pdf; name="a b.pdf"'), 'application/pdf; name="a b.pdf"');
    assert.equal(safeContentType('image/png;'), 'application/octet-stream');
    assert.equal(contentDisposition('video/mp4', '   '), 'inline');
  });

  it('closes every blob stream it opened', async () => {
    const aborted = new AbortController();
    const res = await fetch(`${served?.base}/api/v1/sessions/s1/messages/CJK/media`, { signal: aborted.signal });
    aborted.abort();
    await res.arrayBuffer().catch(() => undefined);
    // Koa destroys a body stream once the response is finished or aborted; give those callbacks a few turns.
    for (let i = 0; i < 200 && !opened.every((s) => s.destroyed); i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(opened.length >= 10, `streams opened: ${opened.length}`);
    assert.ok(opened.every((s) => s.destroyed));
  });
});

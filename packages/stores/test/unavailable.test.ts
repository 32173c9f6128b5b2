/**
 * An unreachable or silent Redis / PostgreSQL / S3 at start-up is reported as DEPENDENCY_UNAVAILABLE naming
 * the dependency and its URL (never its credentials), quickly, instead of a stack or a hang.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { createRootLogger } from '@wagw/shared';
import { freePort, tempDir } from '../../../test/harness/index.ts';
import { openBlobStore, openDirectory, openSql, openStores } from '../src/index.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });

async function failsFast(t: TestContext, promise: Promise<unknown>, message: RegExp, withinMs: number): Promise<void> {
  const started = Date.now();
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.equal((err as { code?: unknown }).code, 'DEPENDENCY_UNAVAILABLE');
    assert.match(err.message, message);
    assert.doesNotMatch(err.message, /hunter2/, 'no credentials in the message');
    return true;
  });
  const took = Date.now() - started;
  t.diagnostic(`failed after ${took} ms`);
  assert.ok(took < withinMs, `failed within ${withinMs} ms (took ${took})`);
}

/** A TCP server that accepts connections and never says a word. */
async function silentServer(t: TestContext): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

test('unreachable Redis: named, with its URL, without credentials, at once', async (t) => {
  const port = await freePort();
  await failsFast(
    t,
    openDirectory({ redis: { url: `redis://user:hunter2@127.0.0.1:${port}` } }, logger),
    new RegExp(`^Redis at redis://127\\.0\\.0\\.1:${port} is unreachable: ECONNREFUSED$`),
    2000,
  );
});

test('unreachable PostgreSQL: named, with its URL, without credentials, at once', async (t) => {
  const port = await freePort();
  await failsFast(
    t,
    openSql({ url: `postgres://postgres:hunter2@127.0.0.1:${port}/wagw` }, logger),
    new RegExp(`^PostgreSQL at postgres://127\\.0\\.0\\.1:${port}/wagw is unreachable: ECONNREFUSED$`),
    2000,
  );
});

test('unreachable S3: named, with its endpoint, at once', async (t) => {
  const port = await freePort();
  const s3 = { endpoint: `http://127.0.0.1:${port}`, accessKey: 'k', secretKey: 'hunter2', bucket: 'wagw', region: 'us-east-1', pathStyle: true };
  await failsFast(t, openBlobStore({ s3, dataDir: '/nonexistent' }, logger), new RegExp(`^S3 at http://127\\.0\\.0\\.1:${port} is unreachable: ECONNREFUSED$`), 2000);
});

test('silent servers (accept, never answer): each start-up gives up within its timeout', async (t) => {
  const port = await silentServer(t);
  const options = { connectTimeoutMs: 500 };
  const s3 = { endpoint: `http://127.0.0.1:${port}`, accessKey: 'k', secretKey: 'hunter2', bucket: 'wagw', region: 'us-east-1', pathStyle: true };
  await Promise.all([
    failsFast(t, openDirectory({ redis: { url: `redis://127.0.0.1:${port}` } }, logger, options), /^Redis at redis:\/\/127\.0\.0\.1:\d+ is (unreachable|unavailable): /, 3000),
    failsFast(t, openSql({ url: `postgres://postgres@127.0.0.1:${port}/wagw` }, logger, options), /^PostgreSQL at postgres:\/\/127\.0\.0\.1:\d+\/wagw is (unreachable|unavailable): /, 3000),
    failsFast(t, openBlobStore({ s3, dataDir: '/nonexistent' }, logger, options), /^S3 at http:\/\/127\.0\.0\.1:\d+ is unreachable: ETIMEDOUT$/, 3000),
  ]);
});

test('openStores with all three unreachable: one error naming every dependency', async (t) => {
  const [r, p, s] = await Promise.all([freePort(), freePort(), freePort()]);
  const dir = await tempDir(t);
  const started = Date.now();
  await assert.rejects(
    openStores(
      {
        redis: { url: `redis://127.0.0.1:${r}` },
        database: { url: `postgres://postgres@127.0.0.1:${p}/wagw`, poolMax: 2 },
        s3: { endpoint: `http://127.0.0.1:${s}`, accessKey: 'k', secretKey: 's', bucket: 'wagw', region: 'us-east-1', pathStyle: true },
        dataDir: dir.path,
        pglitePort: 0,
      },
      logger,
    ),
    (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.equal((err as { code?: unknown }).code, 'DEPENDENCY_UNAVAILABLE');
      assert.match(err.message, /Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable: ECONNREFUSED/);
      assert.match(err.message, /S3 at http:\/\/127\.0\.0\.1:\d+ is unreachable: ECONNREFUSED/);
      assert.match(err.message, /PostgreSQL at postgres:\/\/127\.0\.0\.1:\d+\/wagw is unreachable: ECONNREFUSED/);
      return true;
    },
  );
  assert.ok(Date.now() - started < 3000);
});

// The embedded PGlite wire server has no password check, so it must not listen where another local process
// can connect (issue 10 item 18): by default it serves a Unix socket (mode 0600) in a fresh 0700 directory that
// only this OS user can enter, the router's pg pool reaches it there, and the directory goes at close.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { createRootLogger } from '@wagw/shared';
import { PgliteDatabase } from '../src/index.ts';
import { tempDir } from '../../../test/harness/index.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });

test('PGlite is served on a private Unix socket, not on 127.0.0.1', async (t) => {
  const dir = await tempDir(t);
  const db = await PgliteDatabase.open({ dataDir: path.join(dir.path, 'pglite'), port: 0, logger });
  let closed = false;
  t.after(async () => {
    if (!closed) await db.close();
  });
  const socketDir = db.server.socketDir;
  assert.ok(socketDir !== undefined, `served at ${db.url}`);
  assert.doesNotMatch(db.url, /127\.0\.0\.1|:\d+\//, db.url);
  const dirInfo = await stat(socketDir);
  const sockInfo = await stat(path.join(socketDir, '.s.PGSQL.5432'));
  assert.ok(sockInfo.isSocket());
  assert.equal((dirInfo.mode & 0o777).toString(8), '700');
  assert.equal((sockInfo.mode & 0o777).toString(8), '600');
  assert.equal(sockInfo.uid, process.getuid?.());
  // The router's own pool works over it.
  assert.deepEqual((await db.query<{ n: number }>('SELECT 1 AS n')).rows, [{ n: 1 }]);
  await db.close();
  closed = true;
  await assert.rejects(stat(socketDir), { code: 'ENOENT' });
});

// Migration 007 (own messages are from the session's account), on PostgreSQL and PGlite: a database at 006 with
// rows stored the old way (an own message's sender = the chat) is migrated; own rows of a paired session get
// the session's JID, phone and LID, everything else is untouched.
import assert from 'node:assert/strict';
import { cp, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { createRootLogger } from '@wagw/shared';
import type { SqlDatabase } from '@wagw/shared';
import { createTestDatabase, seedEmbeddedDb, tempDir } from '../../../test/harness/index.ts';
import { MIGRATIONS_DIR, loadMigrations, migrate } from '../src/sql/migrate.ts';
import { PgliteDatabase } from '../src/sql/pglite.ts';
import { PostgresDatabase } from '../src/sql/postgres.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });
const ME = { phone: '+6281234567831', jid: '6281234567831@s.whatsapp.net', lid: '111222333@lid', name: 'Owner' };
const DEWI = '6281234567832@s.whatsapp.net';
const GROUP = '120363025246125486@g.us';

async function check(db: SqlDatabase, dir: string): Promise<void> {
  // Up to 006 only, as a gateway before this change had it.
  const old = path.join(dir, 'old');
  await mkdir(old);
  for (const m of await loadMigrations()) {
    if (m.version < 7) await cp(path.join(MIGRATIONS_DIR, `${String(m.version).padStart(3, '0')}_${m.name}.sql`), path.join(old, `${String(m.version).padStart(3, '0')}_${m.name}.sql`));
  }
  assert.deepEqual((await migrate(db, { logger, dir: old })).current, 6);
  await db.query(`INSERT INTO sessions (id, me) VALUES ('paired', $1::jsonb), ('unpaired', NULL)`, [JSON.stringify(ME)]);
  const row = (session: string, id: string, chat: string, fromMe: boolean, sender: string) =>
    db.query(`INSERT INTO messages (session_id, id, chat_jid, from_me, sender_jid, type, status, content, sent_at) VALUES ($1, $2, $3, $4, $5, 'text', 'sent', $6::jsonb, now())`, [
      session,
      id,
      chat,
      fromMe,
      sender,
      JSON.stringify({ id, chat, from: sender, fromMe, fromPhone: sender === GROUP ? undefined : '+6281234567832', type: 'text', text: 'hi' }),
    ]);
  await row('paired', 'own-direct', DEWI, true, DEWI); // the bug: the recipient as sender
  await row('paired', 'own-group', GROUP, true, GROUP); // the bug in a group: the group as sender
  await row('paired', 'inbound', DEWI, false, DEWI);
  await row('unpaired', 'own-unknown', DEWI, true, DEWI);

  const result = await migrate(db, { logger });
  assert.ok(result.applied.includes(7), JSON.stringify(result));
  const rows = await db.query<{ id: string; sender_jid: string; content: Record<string, unknown> }>(`SELECT id, sender_jid, content FROM messages ORDER BY id`);
  const by = Object.fromEntries(rows.rows.map((r) => [r.id, r]));
  for (const id of ['own-direct', 'own-group']) {
    assert.equal(by[id]?.sender_jid, ME.jid, id);
    assert.equal(by[id]?.content['from'], ME.jid, id);
    assert.equal(by[id]?.content['fromPhone'], ME.phone, id);
    assert.equal(by[id]?.content['fromLid'], ME.lid, id);
    assert.equal(by[id]?.content['text'], 'hi', `${id}: the rest of the content stays`);
  }
  assert.equal(by['inbound']?.sender_jid, DEWI, 'inbound rows are untouched');
  assert.equal(by['inbound']?.content['from'], DEWI);
  assert.equal(by['own-unknown']?.sender_jid, DEWI, 'a session with no known account is left as it was');
}

test('007 on PostgreSQL', async (t) => {
  const fresh = await createTestDatabase(t);
  const db = await PostgresDatabase.connect(fresh.url, { logger, poolMax: 2 });
  t.after(() => db.close());
  await check(db, (await tempDir(t)).path);
});

test('007 on PGlite', async (t) => {
  const dir = await tempDir(t);
  await seedEmbeddedDb(dir.path);
  const db = await PgliteDatabase.open({ dataDir: path.join(dir.path, 'pglite'), port: 0, logger });
  t.after(() => db.close());
  await check(db, dir.path);
});

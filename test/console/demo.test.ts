// `npm run demo` (scripts/demo.ts --auto-scan): from nothing but the repository, a gateway on the simulator
// with embedded stores reaches a connected demo session with a chat, serves the console, and stops cleanly on
// Ctrl-C (SIGINT), removing its temporary data.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../harness/index.ts';

const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

test('npm run demo: connected demo session with a chat, console served, clean stop on Ctrl-C', { timeout: 180_000 }, async (t) => {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/demo.ts'), '--auto-scan'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'error', NODE_ENV: 'development' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  const line = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`demo exited ${child.exitCode}: ${out}`);
      return /session "demo" connected; Alice wrote to it: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
    },
    { what: 'the demo session to connect', timeoutMs: 150_000, intervalMs: 100 },
  );
  const base = line[1] ?? '';
  const key = /API key: (\S+)/.exec(out)?.[1] ?? '';
  const dataDir = /data: (\S+?)\)/.exec(out)?.[1] ?? '';
  assert.ok(key !== '' && dataDir !== '', out);
  assert.match(out, /\[demo\] console: http:\/\/127\.0\.0\.1:\d+\/console /);
  assert.match(out, /▄|█/, 'a terminal QR was printed');

  const page = await fetch(`${base}/console`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /\/console\/app\.js/);
  const session = (await (await fetch(`${base}/api/v1/sessions/demo`, { headers: { 'x-api-key': key } })).json()) as { status: string };
  assert.equal(session.status, 'connected');
  // Alice's first message is in the message store: the console's Chats page has a conversation.
  const chat = await waitFor(
    async () => {
      const r = (await (await fetch(`${base}/api/v1/sessions/demo/messages?limit=10`, { headers: { 'x-api-key': key } })).json()) as { data: { text?: string; fromMe: boolean }[] };
      return r.data.find((m) => !m.fromMe && (m.text ?? '').includes('I am Alice'));
    },
    { what: "Alice's message stored", timeoutMs: 20_000, intervalMs: 200 },
  );
  assert.ok(chat);

  const exited = once(child, 'exit');
  child.kill('SIGINT');
  const [code] = (await exited) as [number | null];
  assert.equal(code, 0, out);
  assert.match(out, /\[demo\] stopped/);
  assert.equal(existsSync(dataDir), false, 'the temporary DATA_DIR is removed');
});

// The web console in real Chromium against a real gateway (forked shards, PostgreSQL) and the WhatsApp
// simulator: sign in, create a session, see its QR, a simulated phone scans it, the status turns connected
// without a reload, send a text and an image to a simulated contact who receives them, its answer appears
// live, logout and the stored status history; a key limited to one session sees only that one; a read-only key
// gets no working write buttons; webhook breakers listed; the host drained from the Cluster page. Every page passes axe-core (no serious or critical violation) and its screenshot is kept in
// test-artifacts/console/ (copies in docs/console/).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { SignJWT } from 'jose';
import QRCode from 'qrcode';
import { DemoPeople, answerText } from '@wagw/wa-sim';
import type { WaSimulator } from '@wagw/wa-sim';
import { createTestDatabase, tempDir, waitFor } from '../harness/index.ts';
import { sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';
import type { Gateway } from '../sessions/helpers.ts';
import { axeSerious, launchChromium } from './browser.ts';
import type { Browser } from './browser.ts';

const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts/console');

const KEYS = {
  admin: 'console-admin-key-0123456789',
  limited: 'console-limited-key-0123456789',
  readonly: 'console-readonly-key-0123456789',
};
const sha = (k: string): string => createHash('sha256').update(k).digest('hex');
const ALICE = { number: '6281200000001', name: 'Alice' };
const JWT = { secret: 'console-test-jwt-secret-0123456789abcdef', issuer: 'console-test', audience: 'wagw' };

describe('web console in Chromium', { timeout: 300_000 }, () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  const t = { after: (fn: () => Promise<void> | void) => cleanups.push(fn) };
  let gw: Gateway;
  let people: DemoPeople;
  let sim: WaSimulator;
  let browser: Browser;
  let page: Page;
  /** A webhook receiver that always answers 500: its deliveries end dead (WEBHOOK_MAX_AGE_MS is 1 s here). */
  let failingHook: string;

  before(async () => {
    const dir = await tempDir(t);
    const [started, db] = await Promise.all([startSim(t, dir.path), createTestDatabase(t)]);
    sim = started.sim;
    const env = started.env;
    people = new DemoPeople(sim, { contacts: [ALICE], pollMs: 100 });
    t.after(() => people.stop());
    const keysFile = path.join(dir.path, 'keys.json');
    await writeFile(
      keysFile,
      JSON.stringify([
        { name: 'admin', sha256: sha(KEYS.admin), scopes: ['admin'] },
        { name: 'limited', sha256: sha(KEYS.limited), scopes: ['sessions:read', 'sessions:write', 'messages:read', 'messages:send'], sessions: ['other'] },
        { name: 'readonly', sha256: sha(KEYS.readonly), scopes: ['sessions:read', 'messages:read'] },
      ]),
    );
    const receiver = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(500).end('receiver down'));
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => receiver.close(() => r())));
    failingHook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    gw = await startGateway(t, {
      env: sessionTestEnv(dir.path, {
        ...env,
        DATABASE_URL: db.url,
        SHARD_COUNT: '1',
        AUTH_API_KEYS_FILE: keysFile,
        WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}`,
        SEND_PER_RECIPIENT_INTERVAL_MS: '0',
        AUTH_JWT_SECRET: JWT.secret,
        AUTH_JWT_ISSUER: JWT.issuer,
        AUTH_JWT_AUDIENCE: JWT.audience,
        WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
        WEBHOOK_MAX_AGE_MS: '1000',
        WEBHOOK_BACKOFF_BASE_MS: '10',
        WEBHOOK_BACKOFF_MAX_MS: '100',
        WEBHOOK_POLL_INTERVAL_MS: '50',
        // An open breaker defers rows without an attempt, and only an attempt past the max age makes a row dead.
        WEBHOOK_BREAKER_THRESHOLD: '10000',
      }),
      webhooks: true,
      simulator: people,
    });
    browser = await launchChromium(t);
    page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    await mkdir(ARTIFACTS, { recursive: true });
  });

  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  /** Screenshot into test-artifacts/console/<name>.png, and no serious/critical axe violation on the page. */
  const check = async (name: string): Promise<void> => {
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
    const violations = await axeSerious(page);
    assert.deepEqual(violations, [], `${name}: ${JSON.stringify(violations, null, 1)}`);
  };

  const signIn = async (key: string): Promise<void> => {
    await page.goto(`${gw.url}/console`);
    await page.getByRole('textbox', { name: 'API key' }).fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
  };

  const signOut = async (): Promise<void> => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  };

  test('the console is served same-origin with its CSP, and a bad key is refused with a clear message', async () => {
    const res = await fetch(`${gw.url}/console`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const html = await res.text();
    assert.doesNotMatch(html, /<script>(?!<)/, 'no inline script');
    assert.equal((await fetch(`${gw.url}/console/nope.js`)).status, 404);

    await page.goto(`${gw.url}/console`);
    await check('sign-in');
    await page.getByRole('textbox', { name: 'API key' }).fill('not-a-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'INVALID_API_KEY' }).waitFor();
  });

  test('create a session, QR, the simulated phone scans it, connected without a reload', async () => {
    await signIn(KEYS.admin);
    await page.getByLabel('Session id (optional)').fill('demo-1');
    await page.getByLabel('Metadata, JSON (optional)').fill('{"customer":"acme"}');
    await page.getByRole('button', { name: 'Create session' }).click();
    await page.getByRole('heading', { name: 'Session demo-1' }).waitFor();
    const qr = page.getByRole('img', { name: 'QR code to link session demo-1' });
    await qr.waitFor({ timeout: 30_000 });
    // The image is the gateway's current QR (rendered from the same string the API serves).
    const shown = await qr.getAttribute('data-qr');
    const api = await gw.api.call<{ qr: string }>('GET', '/api/v1/sessions/demo-1/qr?format=json', undefined, { 'x-api-key': KEYS.admin });
    assert.equal(shown, api.body.qr);
    await check('session-qr');

    await page.evaluate(() => ((globalThis as unknown as { __noReload: boolean }).__noReload = true));
    await page.getByRole('button', { name: 'Scan with simulated phone' }).click();
    await page.getByTestId('session-status').filter({ hasText: 'connected' }).waitFor({ timeout: 30_000 });
    assert.equal(await page.evaluate(() => (globalThis as unknown as { __noReload?: boolean }).__noReload), true, 'the page was not reloaded');
    await page.getByRole('link', { name: 'All sessions' }).click();
    await page.locator('tr[data-session="demo-1"]').filter({ hasText: 'connected' }).waitFor();
    await check('sessions');
  });

  test('send a text and an image to a simulated contact; its answer appears live', async () => {
    await page.getByRole('link', { name: 'Chats' }).click();
    await page.getByRole('button', { name: `Chat with ${ALICE.name} (+${ALICE.number})` }).click();
    await page.getByRole('textbox', { name: 'Message' }).fill('Hello from the console');
    await page.getByRole('button', { name: 'Send' }).click();
    const alice = people.phone(ALICE.number);
    assert.ok(alice);
    await waitFor(() => alice.received().find((m) => m.message?.conversation === 'Hello from the console' || m.message?.extendedTextMessage?.text === 'Hello from the console'), {
      what: 'Alice to receive the text',
      timeoutMs: 20_000,
    });
    // Alice's answer is pushed over the event stream: the conversation shows it without any reload or click.
    const answer = answerText(ALICE, { conversation: 'Hello from the console' });
    await page.locator('li.msg.them').filter({ hasText: answer }).waitFor({ timeout: 20_000 });

    const png = await QRCode.toBuffer('a picture from the console', { type: 'png', width: 64 });
    await page.getByLabel('Attach a file').setInputFiles({ name: 'picture.png', mimeType: 'image/png', buffer: png });
    await page.getByRole('textbox', { name: 'Message' }).fill('A picture');
    await page.getByRole('button', { name: 'Send' }).click();
    const got = await waitFor(() => alice.received().find((m) => m.message?.imageMessage?.caption === 'A picture'), { what: 'Alice to receive the image', timeoutMs: 20_000 });
    assert.equal(got.message?.imageMessage?.mimetype, 'image/png');
    const bytes = await alice.downloadMedia(got.message ?? {});
    assert.deepEqual(bytes, png, 'the very bytes uploaded in the browser');
    await page.locator('li.msg.them').filter({ hasText: `Hi, ${ALICE.name} here. Thanks for "A picture"!` }).waitFor({ timeout: 20_000 });
    // The picture is previewed from the gateway's media route (fetched with the credential, shown as a blob: URL).
    const preview = page.getByRole('img', { name: 'Image: A picture' });
    await preview.waitFor();
    assert.match((await preview.getAttribute('src')) ?? '', /^blob:/);
    assert.ok(await preview.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth > 0), 'the preview decoded');
    // Reply to Alice's first answer and react to it: both reach her phone referring to that message.
    const answerItem = page.locator('li.msg.them').filter({ hasText: answer });
    const answerId = (await answerItem.getAttribute('data-message')) ?? '';
    assert.notEqual(answerId, '');
    await answerItem.getByRole('button', { name: `Reply to message ${answerId}` }).click();
    await page.getByText(`Replying to “${answer.slice(0, 60)}”`).waitFor();
    await page.getByRole('textbox', { name: 'Message' }).fill('This is a reply');
    await page.getByRole('button', { name: 'Send' }).click();
    const reply = await waitFor(() => alice.received().find((m) => m.message?.extendedTextMessage?.text === 'This is a reply'), { what: 'Alice to receive the reply', timeoutMs: 20_000 });
    assert.equal(reply.message?.extendedTextMessage?.contextInfo?.stanzaId, answerId);
    await page.locator('li.msg.me').filter({ hasText: 'This is a reply' }).getByText(`Reply to “${answer.slice(0, 60)}”`).waitFor();
    // The reply's send has answered (its note), so the note that follows is the reaction's: 'Reacted.' or the API's error.
    const note = page.locator('form.composer [role="status"]');
    await note.filter({ hasText: /^Sent\.$/ }).waitFor({ timeout: 20_000 });
    await answerItem.getByRole('button', { name: `React with thumbs up to message ${answerId}` }).click();
    const outcome = await waitFor(
      async () => {
        const text = await note.textContent();
        return text === 'Sent.' ? undefined : text;
      },
      { what: 'the console to answer the reaction', timeoutMs: 20_000 },
    );
    assert.equal(outcome, 'Reacted.', 'the gateway accepted the reaction');
    const reaction = await waitFor(
      () => {
        const got = alice.received().find((m) => m.message?.reactionMessage?.key?.id === answerId);
        if (got !== undefined) return got;
        const seen = alice.received().flatMap((m) => (m.message?.reactionMessage ? [m.message.reactionMessage.key?.id] : []));
        throw new Error(`her reactions so far target ${JSON.stringify(seen)}, not ${answerId}`);
      },
      { what: 'Alice to receive the reaction', timeoutMs: 20_000 },
    );
    assert.equal(reaction.message?.reactionMessage?.text, '👍');
    // Statuses of the sent messages are shown (sent, then delivered/read as receipts arrive).
    await page.locator('li.msg.me .status').first().waitFor();
    await check('chats');
  });

  test('cluster, webhooks, events and API reference pages', async () => {
    await page.getByRole('link', { name: 'Cluster' }).click();
    await page.getByRole('table', { name: /Shards of host/ }).waitFor();
    // Memory and event-loop lag come from the shard itself (stats over IPC).
    await page.locator('tr[data-shard="0"]').filter({ hasText: /\d+ MiB \/ \d+ MiB/ }).waitFor();
    // Grow this host from one shard to two.
    await page.getByRole('spinbutton', { name: 'Shard count of this host' }).fill('2');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('status').filter({ hasText: 'Shard count changed.' }).waitFor({ timeout: 30_000 });
    await page.locator('tr[data-shard="1"]').filter({ hasText: 'ready' }).waitFor();
    assert.equal(gw.router.supervisor.list().length, 2);
    await check('cluster');

    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByLabel('Show deliveries').waitFor();

    await page.getByRole('link', { name: 'Events' }).click();
    await page.locator('ol.events li[data-type="status"]').first().waitFor();
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('checkbox', { name: 'status', exact: true }).uncheck();
    assert.equal(await page.locator('ol.events li[data-type="status"]').count(), 0, 'the type filter hides status events');
    await page.getByRole('button', { name: /^Resume/ }).click();
    await check('events');

    await page.goto(`${gw.url}/docs`);
    await page.locator('.swagger-ui .opblock').first().waitFor({ timeout: 30_000 });
    assert.ok((await page.locator('.swagger-ui .opblock').count()) > 20, 'the operations of /openapi.json are rendered');
    // "Try it out" calls with the console's credential: Swagger UI is pre-authorised from sessionStorage.
    await page.locator('.swagger-ui .btn.authorize.locked').waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'api-reference.png') });
    await page.goto(`${gw.url}/console`);
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
  });

  // Injected delay (the CI failure of 2026-12-05: after a migration the page showed the session not connected for
  // 30 s): a list read answered after a newer status is stale. The read here answers demo-1 as it was a minute
  // before what the page holds; the page must keep the newer status. Without the merge by updatedAt it shows
  // `starting` until the next read.
  test('a list read that answers with an older status does not undo the newer one', async () => {
    await page.goto(`${gw.url}/console#/sessions`);
    await page.locator('tr[data-session="demo-1"]').filter({ hasText: 'connected' }).waitFor();
    await page.route(
      '**/api/v1/sessions?limit=*',
      async (route) => {
        const response = await route.fetch();
        const body = (await response.json()) as { data: { id: string; status: string; updatedAt: string }[] };
        for (const s of body.data) {
          if (s.id !== 'demo-1') continue;
          s.status = 'starting';
          s.updatedAt = new Date(Date.parse(s.updatedAt) - 60_000).toISOString();
        }
        await route.fulfill({ response, json: body });
      },
    );
    // Creating a session reads the list again (as do the new session's first events); every read of this window
    // answers the stale demo-1, and the new row comes with it.
    await page.getByLabel('Session id (optional)').fill('stale-read');
    await page.getByRole('button', { name: 'Create session' }).click();
    await page.getByRole('heading', { name: 'Session stale-read' }).waitFor();
    await page.getByRole('link', { name: 'All sessions' }).click();
    await page.locator('tr[data-session="stale-read"]').waitFor();
    assert.equal(await page.locator('tr[data-session="demo-1"]').filter({ hasText: 'connected' }).count(), 1, 'demo-1 still shows connected');
    await page.unroute('**/api/v1/sessions?limit=*');
    assert.equal((await gw.api.call('DELETE', '/api/v1/sessions/stale-read', undefined, { 'x-api-key': KEYS.admin })).status, 204);
    await page.locator('tr[data-session="stale-read"]').waitFor({ state: 'detached' });
  });

  test('migrate to the other shard, then logout from the console unlinks the session', async () => {
    await page.goto(`${gw.url}/console#/sessions/demo-1`);
    const from = (await gw.api.call<{ shard: number }>('GET', '/api/v1/sessions/demo-1', undefined, { 'x-api-key': KEYS.admin })).body.shard;
    const to = from === 0 ? 1 : 0;
    await page.getByRole('spinbutton', { name: 'Migrate to shard' }).fill(String(to));
    await page.getByRole('button', { name: 'Migrate' }).click();
    await page.getByRole('status').filter({ hasText: 'Migrate: done.' }).waitFor({ timeout: 30_000 });
    await page.getByText(`test-host / shard ${to}`).waitFor();
    await page.getByTestId('session-status').filter({ hasText: 'connected' }).waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Logout' }).click();
    await page.getByTestId('session-status').filter({ hasText: 'logged out' }).waitFor({ timeout: 30_000 });
    const s = await gw.api.call<{ status: string }>('GET', '/api/v1/sessions/demo-1', undefined, { 'x-api-key': KEYS.admin });
    assert.equal(s.body.status, 'logged_out');

    // The stored status history (GET /:id/history, written with each status change) is what the page shows,
    // newest first: the logout, and before it the session connected on the shard it migrated to.
    const stored = await gw.api.call<{ data: { seq: number; status: string; reason: string | null; shard: number | null }[] }>('GET', '/api/v1/sessions/demo-1/history', undefined, { 'x-api-key': KEYS.admin });
    assert.equal(stored.status, 200);
    const logout = stored.body.data.find((e) => e.status === 'logged_out' && e.reason === 'logout requested');
    assert.ok(logout, JSON.stringify(stored.body.data));
    assert.ok(stored.body.data.some((e) => e.status === 'connected' && e.shard === to), JSON.stringify(stored.body.data));
    assert.ok(stored.body.data.some((e) => e.status === 'qr'), 'from the start: the QR the phone scanned');
    const history = page.getByRole('table', { name: /Stored status changes/ });
    await history.locator(`tr[data-seq="${logout.seq}"]`).filter({ hasText: 'logout requested' }).waitFor();
    assert.deepEqual(
      await history.locator('tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-seq')))),
      stored.body.data.map((e) => e.seq),
      'every stored change, newest first',
    );
    await check('session-history');
    await signOut();
  });

  test('a key limited to one session sees only that one', async () => {
    const created = await gw.api.call('POST', '/api/v1/sessions', { id: 'other' }, { 'x-api-key': KEYS.admin });
    assert.equal(created.status, 201);
    await signIn(KEYS.limited);
    await page.locator('tr[data-session="other"]').waitFor();
    assert.equal(await page.locator('tr[data-session]').count(), 1);
    assert.equal(await page.locator('tr[data-session="demo-1"]').count(), 0);
    await page.getByRole('link', { name: 'Cluster' }).waitFor({ state: 'detached' });
    // The history is session-scoped like every session route.
    assert.equal((await gw.api.call('GET', '/api/v1/sessions/demo-1/history', undefined, { 'x-api-key': KEYS.limited })).status, 403);
    assert.equal((await gw.api.call('GET', '/api/v1/sessions/other/history', undefined, { 'x-api-key': KEYS.limited })).status, 200);
    await check('limited-key');
    await signOut();
  });

  test('a read-only key gets no write buttons, and the API refuses the writes', async () => {
    await signIn(KEYS.readonly);
    await page.locator('tr[data-session="demo-1"]').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Create session' }).count(), 0);
    // Search and status filter narrow the list.
    await page.getByRole('searchbox', { name: 'Search' }).fill('oth');
    assert.deepEqual(await page.locator('tr[data-session]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-session'))), ['other']);
    await page.getByRole('searchbox', { name: 'Search' }).fill('');
    await page.getByLabel('Status').selectOption('logged_out');
    assert.deepEqual(await page.locator('tr[data-session]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-session'))), ['demo-1']);
    await page.getByLabel('Status').selectOption('');
    await page.goto(`${gw.url}/console#/sessions/other`);
    await page.getByRole('heading', { name: 'Session other' }).waitFor();
    for (const name of ['Restart', 'Logout', 'Delete…', 'Migrate', 'Scan with simulated phone']) {
      assert.equal(await page.getByRole('button', { name }).count(), 0, `no ${name} button`);
    }
    await page.goto(`${gw.url}/console#/chats/demo-1/${ALICE.number}@s.whatsapp.net`);
    await page.getByRole('heading', { name: `Chat with +${ALICE.number}` }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Send' }).count(), 0);
    await check('read-only');
    // The same calls the hidden buttons would make, from the page with its credential: refused by the API.
    const statuses = await page.evaluate(async (key) => {
      const call = (method: string, url: string, body?: unknown) =>
        fetch(url, { method, headers: { 'x-api-key': key, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }).then((r) => r.status);
      return [
        await call('POST', '/api/v1/sessions', { id: 'nope' }),
        await call('POST', '/api/v1/sessions/other/restart'),
        await call('DELETE', '/api/v1/sessions/other'),
        await call('POST', '/api/v1/sessions/demo-1/messages', { to: '6281200000001', type: 'text', text: 'x' }),
      ];
    }, KEYS.readonly);
    assert.deepEqual(statuses, [403, 403, 403, 403]);
    await signOut();
  });

  test('a JWT limited to one session: sign-in with the bearer token, live stream read with the Authorization header', async () => {
    const token = await new SignJWT({ scope: 'sessions:read messages:read', sessions: ['other'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('jwt-operator')
      .setIssuer(JWT.issuer)
      .setAudience(JWT.audience)
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(JWT.secret));
    await page.goto(`${gw.url}/console`);
    await page.getByRole('radio', { name: 'JWT (bearer token)' }).check();
    await page.getByRole('textbox', { name: 'Token' }).fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Signed in as jwt-operator').waitFor();
    await page.getByRole('status').filter({ hasText: 'Live updates on' }).waitFor();
    await page.locator('tr[data-session="other"]').waitFor();
    assert.equal(await page.locator('tr[data-session]').count(), 1);
    await signOut();
  });

  test('webhooks: a dead delivery with its last error, replayed from the console', async () => {
    await signIn(KEYS.admin);
    const created = await gw.api.call('POST', '/api/v1/sessions', { id: 'hooked', webhookUrl: failingHook }, { 'x-api-key': KEYS.admin });
    assert.equal(created.status, 201);
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByLabel('Show deliveries').selectOption('dead');
    const row = page.locator('table.deliveries tbody tr').filter({ hasText: failingHook }).first();
    await row.waitFor({ timeout: 30_000 });
    assert.match((await row.textContent()) ?? '', /500/, 'the last error names the receiver status');
    // The receiver's circuit breaker (this host's; the threshold here keeps it closed): its failures in a row and
    // the last one's error, from GET /api/v1/admin/webhooks/breakers.
    const origin = new URL(failingHook).origin;
    const breakers = await gw.api.call<{ hostId: string; breakers: { origin: string; state: string; consecutiveFailures: number; lastError: string | null }[] }>(
      'GET',
      '/api/v1/admin/webhooks/breakers',
      undefined,
      { 'x-api-key': KEYS.admin },
    );
    assert.equal(breakers.body.hostId, 'test-host');
    const breaker = breakers.body.breakers.find((b) => b.origin === origin);
    assert.equal(breaker?.state, 'closed', JSON.stringify(breakers.body));
    assert.ok((breaker?.consecutiveFailures ?? 0) > 0);
    assert.equal(breaker?.lastError, 'HTTP 500');
    assert.equal((await gw.api.call('GET', '/api/v1/admin/webhooks/breakers', undefined, { 'x-api-key': KEYS.readonly })).status, 403);
    const breakerRow = page.getByRole('table', { name: /Circuit breakers of host test-host/ }).locator(`tr[data-origin="${origin}"]`);
    await breakerRow.filter({ hasText: 'HTTP 500' }).waitFor();
    assert.match((await breakerRow.textContent()) ?? '', /closed/);
    await check('webhooks');
    await row.getByRole('button', { name: /^Replay delivery \d+$/ }).click();
    await page.getByRole('status').filter({ hasText: /^1 deliveries pending again\.$/ }).waitFor();
  });

  test('delete asks for confirmation first', async () => {
    await page.goto(`${gw.url}/console#/sessions/hooked`);
    await page.getByRole('button', { name: 'Delete…' }).click();
    await page.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await gw.api.call('GET', '/api/v1/sessions/hooked', undefined, { 'x-api-key': KEYS.admin })).status, 200, 'cancel keeps it');
    await page.getByRole('button', { name: 'Delete…' }).click();
    await page.getByRole('group', { name: 'Confirm delete' }).getByRole('button', { name: 'Confirm delete' }).click();
    await page.getByRole('heading', { name: 'Sessions' }).waitFor();
    await page.locator('tr[data-session="hooked"]').waitFor({ state: 'detached' });
    assert.equal((await gw.api.call('GET', '/api/v1/sessions/hooked', undefined, { 'x-api-key': KEYS.admin })).status, 404);
  });

  test('link by pairing code: the console shows the code, the phone enters it, connected', async () => {
    const phone = sim.createPhone({ name: 'Pairing phone' });
    await page.goto(`${gw.url}/console#/sessions`);
    await page.getByLabel('Session id (optional)').fill('paired');
    await page.getByRole('button', { name: 'Create session' }).click();
    await page.getByRole('heading', { name: 'Session paired' }).waitFor();
    await page.getByLabel('Phone for a pairing code').fill(`+${phone.number}`);
    await page.getByRole('button', { name: 'Get pairing code' }).click();
    const code = (await page.getByLabel('Pairing code', { exact: true }).textContent()) ?? '';
    assert.match(code, /^[A-Z0-9]{8}$/);
    await sim.enterPairingCode(phone, code);
    await page.getByTestId('session-status').filter({ hasText: 'connected' }).waitFor({ timeout: 30_000 });
    await page.getByText(`+${phone.number}`).first().waitFor();
  });

  test('drain the host from the Cluster page: a confirm step, then the row shows draining and the sessions moved and left', async () => {
    await page.goto(`${gw.url}/console#/cluster`);
    const row = page.locator('tr[data-host="test-host"]');
    await row.filter({ hasText: 'alive' }).waitFor();
    await row.getByRole('button', { name: 'Drain host test-host' }).click();
    await row.getByRole('group', { name: 'Confirm drain of host test-host' }).getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await gw.api.call('GET', '/ready')).status, 200, 'cancel drains nothing');
    await row.getByRole('button', { name: 'Drain host test-host' }).click();
    await row.getByRole('button', { name: 'Confirm drain' }).click();
    // One host: no other takes its sessions, so all of them are left (a cluster moves them: test/cluster).
    const left = gw.router.sessions?.localCount ?? -1;
    assert.ok(left > 0);
    await row.getByTestId('drain-result').filter({ hasText: `moved 0 · left ${left}` }).waitFor();
    await row.filter({ hasText: 'draining' }).waitFor();
    assert.equal(await row.getByRole('button', { name: 'Drain host test-host' }).count(), 0, 'a draining host has no drain button');
    assert.equal((await gw.api.call('GET', '/ready')).status, 503, 'the host is draining');
    await check('cluster-drained');
  });

  test('nothing left loopback and no CSP violation or script error', () => {
    assert.deepEqual(browser.offLoopback, []);
    // Refusals this test asked for: the bad key at sign-in and the read-only key's four writes.
    const expected = new Set(['401 GET /api/v1/me', '403 POST /api/v1/sessions', '403 POST /api/v1/sessions/other/restart', '403 DELETE /api/v1/sessions/other', '403 POST /api/v1/sessions/demo-1/messages']);
    assert.deepEqual(
      browser.errors.filter((e) => !expected.has(e) && !e.startsWith('Failed to load resource: the server responded with a status of')),
      [],
    );
  });
});

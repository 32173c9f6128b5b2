// `npm run demo`: the gateway working end to end without a WhatsApp account or any service. Starts the
// WhatsApp simulator and a gateway wired to it (embedded stores in a temporary DATA_DIR, two shards), makes an
// admin API key, creates the session `demo`, prints the console URL and the QR in the terminal. Link it with
// the console's "Scan with simulated phone" button (or `--auto-scan`), then chat with the simulated contacts:
// they answer. Ctrl-C stops everything and removes the temporary data.
//
// Options: --auto-scan (a simulated phone scans the first QR itself), PORT (default 8080; 0 = any free port),
// DEMO_KEEP_DATA=1 (keep the temporary DATA_DIR).
import { randomBytes, createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import QRCode from 'qrcode';
import { composeGateway } from '@wagw/router';
import { createRootLogger, loadConfig } from '@wagw/shared';
import { openStores } from '@wagw/stores';
import { DemoPeople, WaSimulator } from '@wagw/wa-sim';

const CONTACTS = [
  { number: '6281200000001', name: 'Alice' },
  { number: '6281200000002', name: 'Budi' },
  { number: '6281200000003', name: 'Citra' },
];
const SESSION = 'demo';

const autoScan = process.argv.includes('--auto-scan');
const say = (line: string): void => {
  process.stdout.write(`[demo] ${line}\n`);
};

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'wagw-demo-'));
const sim = await WaSimulator.create({ host: '127.0.0.1' });
const caFile = path.join(dataDir, 'wa-sim-ca.pem');
await writeFile(caFile, sim.mediaCaPem);
const people = new DemoPeople(sim, { contacts: CONTACTS });

const apiKey = `demo_${randomBytes(18).toString('base64url')}`;
const config = loadConfig({
  NODE_ENV: 'development',
  LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'error',
  HOST: '127.0.0.1',
  PORT: process.env['PORT'] ?? '8080',
  HOST_ID: 'demo-host',
  DATA_DIR: dataDir,
  SHARD_COUNT: '2',
  WORKER_THREADS: '1',
  WA_WEBSOCKET_URL: sim.urls.ws,
  WA_ROOT_PUBLIC_KEY: sim.rootPublicKey.toString('base64'),
  WA_EXTRA_CA_FILE: caFile,
  WA_MEDIA_HOST: sim.media.hostPort,
  AUTH_API_KEYS: `demo:${createHash('sha256').update(apiKey).digest('hex')}:admin`,
  // The outbox runs (the console's Webhooks page has data); with no BACKEND_URL only session webhookUrls get events.
  WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}`,
  SEND_PER_RECIPIENT_INTERVAL_MS: '0',
});
const logger = createRootLogger({ proc: 'router', level: config.logLevel });
const stores = await openStores(config, logger);
const { router } = await composeGateway({
  config,
  logger,
  stores,
  shardEntry: fileURLToPath(import.meta.resolve('@wagw/shard/main')),
  simulator: people,
});

let stopping = false;
let watch: NodeJS.Timeout | undefined;
const stop = async (signal: string): Promise<void> => {
  if (stopping) {
    say('second signal: exiting now');
    process.exit(1);
  }
  stopping = true;
  say(`${signal}: stopping the gateway and the simulator…`);
  clearInterval(watch);
  people.stop();
  await router.stop(signal);
  await sim.close();
  if (process.env['DEMO_KEEP_DATA'] !== '1') await rm(dataDir, { recursive: true, force: true });
  say('stopped');
  process.exit(0);
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));

const call = async <T>(method: string, pathname: string, body?: unknown): Promise<{ status: number; body: T }> => {
  const res = await fetch(new URL(pathname, router.url), {
    method,
    headers: { 'x-api-key': apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as T };
};

await router.restored;
const created = await call('POST', '/api/v1/sessions', { id: SESSION, metadata: { demo: true } });
if (created.status !== 201) throw new Error(`creating the demo session failed: ${created.status} ${JSON.stringify(created.body)}`);

// The first QR, printed for the terminal; the console shows it live (and each rotation).
let qr: string | undefined;
for (let i = 0; i < 300 && qr === undefined; i++) {
  const r = await call<{ qr?: string }>('GET', `/api/v1/sessions/${SESSION}/qr?format=json`);
  if (r.status === 200) qr = r.body.qr;
  else await new Promise((resolve) => setTimeout(resolve, 100));
}
if (qr === undefined) throw new Error('the demo session produced no QR');

say(`gateway: ${router.url} (simulator: ${sim.urls.ws}, data: ${dataDir})`);
say(`console: ${router.url}/console   API key: ${apiKey}`);
say(`API reference: ${router.url}/docs`);
process.stdout.write(`${await QRCode.toString(qr, { type: 'terminal', small: true })}\n`);
say(`session "${SESSION}" waits for a scan: open the console, Sessions -> ${SESSION}, "Scan with simulated phone".`);
say(`simulated contacts who answer: ${CONTACTS.map((c) => `${c.name} +${c.number}`).join(', ')}. Ctrl-C stops.`);

if (autoScan) {
  const r = await call<{ phone?: string }>('POST', '/api/v1/simulator/scan', { qr });
  say(`auto-scan: scanned by simulated phone +${r.body.phone ?? '?'} (${r.status})`);
}

// Once connected, Alice writes first, so the console's Chats page has a conversation to open.
let greeted = false;
watch = setInterval(() => {
  void call<{ status?: string }>('GET', `/api/v1/sessions/${SESSION}`)
    .then(async (r) => {
      if (greeted || r.body.status !== 'connected') return;
      greeted = true;
      const owner = sim.phones().find((p) => p.linkedDevices().length > 0 && !CONTACTS.some((c) => c.number === p.number));
      const alice = people.phone('6281200000001');
      if (owner !== undefined && alice !== undefined) await alice.sendText(owner.jid, 'Hi! I am Alice, a simulated contact. Write me anything and I answer.');
      say(`session "${SESSION}" connected; Alice wrote to it: ${router.url}/console#/chats/${SESSION}`);
    })
    .catch(() => undefined);
}, 1000);

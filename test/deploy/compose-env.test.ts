// docker-compose.yml as an operator runs it: each gateway service's environment (merged over the image's ENV from
// the Dockerfile, so NODE_ENV=production) with the service hosts swapped for loopback equivalents (Redis,
// PostgreSQL, MinIO -> s3rver, WhatsApp -> the simulator, the compose secret -> its file in the repository) must
// start a router that becomes ready and accepts the configured API key. A compose file that production refuses
// (e.g. no AUTH_*) fails here. No Docker engine is used.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { createTestDatabase, freePort, startPrivateRedis, startS3, tempDir, waitFor } from '../harness/index.ts';
import { startRouterProcess, startSim } from '../sessions/helpers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The demo key whose hash deploy/compose/api-keys.json holds (docker-compose.yml says to replace it). */
const DEMO_KEY = 'wagw_demo_local_only_change_me';

interface ComposeService {
  environment?: Record<string, string | number | boolean | null> | string[];
  secrets?: (string | { source: string; target?: string })[];
  healthcheck?: unknown;
  depends_on?: unknown;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  secrets?: Record<string, { file?: string; environment?: string }>;
}

function compose(): ComposeFile {
  // merge: true resolves the `<<: *gateway` merge keys the way Docker Compose does.
  return parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as ComposeFile;
}

function envOf(service: ComposeService): Record<string, string> {
  const e = service.environment ?? {};
  const pairs = Array.isArray(e) ? e.map((x) => x.split(/=(.*)/s, 2) as [string, string]) : Object.entries(e).map(([k, v]) => [k, v === null ? '' : String(v)]);
  return Object.fromEntries(pairs);
}

/** The runtime stage's ENV of the Dockerfile (`ENV A=1 \ B=2` lines), which the container starts with. */
function dockerfileEnv(): Record<string, string> {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const runtime = text.slice(text.search(/^FROM .* AS runtime$/m));
  const out: Record<string, string> = {};
  for (const line of runtime.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const m of line.slice(4).matchAll(/([A-Z_][A-Z0-9_]*)=("[^"]*"|\S+)/g)) out[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  }
  return out;
}

describe('docker-compose.yml', () => {
  const file = compose();
  const gateways = Object.entries(file.services).filter(([name]) => /^gateway-\d+$/.test(name));

  test('three gateway replicas with distinct HOST_ID and PUBLIC_URL, HAProxy, Redis, PostgreSQL and MinIO', () => {
    assert.deepEqual(gateways.map(([n]) => n), ['gateway-1', 'gateway-2', 'gateway-3']);
    const envs = gateways.map(([, s]) => envOf(s));
    assert.deepEqual(envs.map((e) => e['HOST_ID']), ['gateway-1', 'gateway-2', 'gateway-3']);
    assert.deepEqual(envs.map((e) => e['PUBLIC_URL']), ['http://gateway-1:8080', 'http://gateway-2:8080', 'http://gateway-3:8080']);
    for (const name of ['lb', 'redis', 'postgres', 'minio']) assert.ok(file.services[name] !== undefined, `service ${name}`);
    const lb = envOf(file.services['lb']!);
    assert.deepEqual([lb['GATEWAY_1'], lb['GATEWAY_2'], lb['GATEWAY_3']], ['gateway-1:8080', 'gateway-2:8080', 'gateway-3:8080']);
    assert.equal(dockerfileEnv()['NODE_ENV'], 'production', 'the image runs in production mode');
  });

  test('a gateway service environment (hosts swapped for loopback) starts a production router that becomes ready', async (t) => {
    const [name, service] = gateways[0]!;
    const env = { ...dockerfileEnv(), ...envOf(service) };
    const dir = await tempDir(t);
    const [{ env: simEnv }, redis, db, s3, port] = await Promise.all([startSim(t, dir.path), startPrivateRedis(t), createTestDatabase(t), startS3(t), freePort()]);

    // Every value that names a compose service is swapped; anything else is the compose file's own.
    const swaps: Record<string, string> = {
      HOST: '127.0.0.1',
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      DATA_DIR: dir.path,
      REDIS_URL: redis.url,
      DATABASE_URL: db.url,
      S3_ENDPOINT: s3.endpoint,
      S3_ACCESS_KEY: s3.accessKey,
      S3_SECRET_KEY: s3.secretKey,
      S3_BUCKET: s3.bucket,
    };
    assert.equal(new URL(env['REDIS_URL']!).hostname, 'redis');
    assert.equal(new URL(env['DATABASE_URL']!).hostname, 'postgres');
    assert.equal(new URL(env['S3_ENDPOINT']!).hostname, 'minio');
    // Compose mounts secrets at /run/secrets/<name>: read the file the compose file names instead.
    const secretPath = env['AUTH_API_KEYS_FILE'];
    assert.ok(secretPath !== undefined, `${name} sets AUTH_API_KEYS_FILE (production refuses to start without AUTH_*)`);
    const secretName = path.basename(secretPath);
    assert.ok(service.secrets?.includes(secretName), `${name} mounts the secret ${secretName}`);
    const secretFile = file.secrets?.[secretName]?.file;
    assert.ok(secretFile !== undefined, `top-level secret ${secretName} has a file`);
    swaps['AUTH_API_KEYS_FILE'] = path.join(ROOT, secretFile);

    // WhatsApp itself is the one outside service: the simulator stands in for it (WA_SIMULATOR=true is what
    // production requires to accept the simulator's root key), so nothing leaves the machine.
    const routerEnv = { ...env, ...swaps, ...simEnv, WA_SIMULATOR: 'true', LOG_LEVEL: process.env['WAGW_TEST_LOG'] ?? 'warn', SHARD_COUNT: env['SHARD_COUNT'] ?? '2' };
    const router = await startRouterProcess(t, routerEnv);
    const ready = await waitFor(
      async () => {
        const r = await fetch(new URL('/ready', router.url));
        return r.status === 200 ? r : null;
      },
      { what: 'the compose environment router to be ready', timeoutMs: 45_000, intervalMs: 200 },
    );
    assert.equal(ready.status, 200);

    // The compose file's key works; no key is refused (production runs with authentication on).
    const withKey = await fetch(new URL('/api/v1/sessions', router.url), { headers: { 'x-api-key': DEMO_KEY } });
    assert.equal(withKey.status, 200, await withKey.text());
    const without = await fetch(new URL('/api/v1/sessions', router.url));
    assert.equal(without.status, 401);
    // /health shows its details (the host id among them) only to admin credentials (docs/security.md).
    const health = (await (await fetch(new URL('/health', router.url), { headers: { 'x-api-key': DEMO_KEY } })).json()) as { hostId: string };
    assert.equal(health.hostId, 'gateway-1');
    assert.equal(await router.stop('SIGTERM'), 0, router.stderr());
  });
});

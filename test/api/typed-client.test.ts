// The typed client a backend generates: openapi-typescript (7.x, run as its CLI, offline) turns the served
// /openapi.json into test/api/client/gateway-api.ts, which must be what is committed (so typed-client.ts, which
// `turbo run typecheck` checks, is checked against the document the gateway serves now); the status table there
// matches the document; and openapi-fetch calls every operation of a real gateway, each answer a listed status.
// After an API change: WAGW_UPDATE_CLIENT_TYPES=1 node --test test/api/typed-client.test.ts rewrites the file.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from '../harness/index.ts';
import { OPERATION_STATUSES, callEveryOperation, gatewayClient, sessionOrError } from './client/typed-client.ts';
import { gatewayWithDocument } from './document.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const GENERATED = path.join(here, 'client', 'gateway-api.ts');
const generatorCli = path.join(path.dirname(createRequire(import.meta.url).resolve('openapi-typescript/package.json')), 'bin', 'cli.js');
const KEY = 'wagw_typed_client_key_0123456789';

test('a client generated from the served document', { timeout: 150_000 }, async (t) => {
  const { gw, doc } = await gatewayWithDocument(t, { AUTH_API_KEYS: `typed:${createHash('sha256').update(KEY).digest('hex')}:admin` });

  await t.test('openapi-typescript generates exactly the committed types', async () => {
    const dir = await tempDir(t);
    const input = path.join(dir.path, 'openapi.json');
    const output = path.join(dir.path, 'gateway-api.ts');
    await writeFile(input, JSON.stringify(doc));
    await promisify(execFile)(process.execPath, ['--import', path.join(here, 'no-network.mjs'), generatorCli, input, '-o', output], {
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      cwd: dir.path,
    });
    const fresh = await readFile(output, 'utf8');
    if (process.env['WAGW_UPDATE_CLIENT_TYPES'] === '1') await writeFile(GENERATED, fresh);
    assert.ok(fresh === (await readFile(GENERATED, 'utf8')), 'test/api/client/gateway-api.ts is stale: rerun with WAGW_UPDATE_CLIENT_TYPES=1');
  });

  await t.test('the status table the types are checked against is the document', () => {
    const fromDoc: Record<string, number[]> = {};
    for (const item of Object.values(doc.paths)) {
      for (const op of Object.values(item)) fromDoc[op.operationId ?? '?'] = Object.keys(op.responses).map(Number);
    }
    assert.deepEqual(fromDoc, Object.fromEntries(Object.entries(OPERATION_STATUSES).map(([k, v]) => [k, [...v]])));
  });

  await t.test('openapi-fetch calls every operation; each answer is a listed status', async () => {
    const client = gatewayClient(gw.api.base, { 'x-api-key': KEY });
    const statuses = await callEveryOperation(client, 'typed-1', '3EB0C431C26A1916E1A0');
    t.diagnostic(JSON.stringify(statuses));
    for (const [op, status] of Object.entries(statuses)) {
      assert.ok((OPERATION_STATUSES[op as keyof typeof OPERATION_STATUSES] as readonly number[]).includes(status), `${op} answered ${status}`);
    }
    assert.equal(Object.keys(statuses).length, Object.keys(OPERATION_STATUSES).length, 'every operation was called');
    assert.equal(statuses.postSessions, 201);
    assert.equal(statuses.getSession, 200);
    assert.equal(statuses.getSessionMessage, 404);
    assert.equal(statuses.deleteSession, 204);
  });

  await t.test('typed errors: 404 and 401 come back as the Error schema', async () => {
    const missing = await sessionOrError(gatewayClient(gw.api.base, { 'x-api-key': KEY }), 'no-such-session');
    assert.equal(missing.status, 404);
    assert.equal(missing.error?.error.code, 'SESSION_NOT_FOUND');
    const anonymous = await sessionOrError(gatewayClient(gw.api.base, {}), 'typed-1');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.error?.error.code, 'UNAUTHORIZED');
  });
});

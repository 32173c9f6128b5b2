// The OpenAPI document the gateway serves, linted by Redocly CLI with its `recommended` rules (test/api/redocly.yaml
// names and justifies each rule turned off). Any error or warning fails. Offline: telemetry and the update notice
// are off, the config is local, and no-network.mjs makes any non-loopback connection from the CLI throw.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from '../harness/index.ts';
import { gatewayWithDocument } from './document.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const redoclyCli = path.join(path.dirname(createRequire(import.meta.url).resolve('@redocly/cli/package.json')), 'bin', 'cli.js');

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
}

/** Runs Redocly CLI on `file` under the Node running this test, offline; returns its JSON report. */
export async function redoclyLint(file: string): Promise<{ report: LintReport; stderr: string }> {
  const run = promisify(execFile);
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' };
  const args = ['--import', path.join(here, 'no-network.mjs'), redoclyCli, 'lint', '--config', path.join(here, 'redocly.yaml'), '--format', 'json', file];
  // Exit code 1 means problems were found: the JSON report on stdout says which.
  const out = await run(process.execPath, args, { env, maxBuffer: 16 * 1024 * 1024 }).catch((err: { code?: number; stdout?: string; stderr?: string }) => {
    if (err.code === 1 && typeof err.stdout === 'string' && err.stdout.includes('"totals"')) return { stdout: err.stdout, stderr: err.stderr ?? '' };
    throw new Error(`redocly failed (exit ${String(err.code)}): ${err.stderr ?? ''}`);
  });
  return { report: JSON.parse(out.stdout.slice(out.stdout.indexOf('{'))) as LintReport, stderr: out.stderr };
}

test('the served OpenAPI document passes Redocly recommended rules with no warning', { timeout: 120_000 }, async (t) => {
  const { doc } = await gatewayWithDocument(t);
  const dir = await tempDir(t);
  const file = path.join(dir.path, 'openapi.json');
  await writeFile(file, JSON.stringify(doc));
  const { report, stderr } = await redoclyLint(file);
  assert.doesNotMatch(stderr, /no-network/, stderr);
  const problems = report.problems.map((p) => `${p.severity} ${p.ruleId} at ${p.location[0]?.pointer ?? '?'}: ${p.message}`);
  assert.deepEqual(problems, []);
  assert.deepEqual(report.totals, { errors: 0, warnings: 0, ignored: 0 });
});

test('the lint fails a broken document (the check is live)', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir.path, 'broken.json');
  // Two operations with one operationId, a path parameter not declared, no responses: recommended errors.
  const op = { operationId: 'same', summary: 'x', responses: {} };
  await writeFile(file, JSON.stringify({ openapi: '3.1.0', info: { title: 't', version: '1', description: 'd' }, servers: [{ url: '/' }], paths: { '/a/{id}': { get: op }, '/b': { get: op } } }));
  const { report } = await redoclyLint(file);
  assert.ok(report.totals.errors > 0, JSON.stringify(report.totals));
  const rules = new Set(report.problems.map((p) => p.ruleId));
  assert.ok(rules.has('operation-operationId-unique'), [...rules].join(','));
});

test('no-network.mjs refuses a non-loopback connection before any socket connects', async () => {
  // The real connect is replaced first by one that records the call and throws, so nothing can leave even if
  // the guard were broken; the guard (imported after) must refuse 192.0.2.1 (TEST-NET-1) without calling it.
  const script = `
    import net from 'node:net';
    const calls = [];
    net.Socket.prototype.connect = function (o) { calls.push(o); throw new Error('real connect reached'); };
    await import(${JSON.stringify(path.join(here, 'no-network.mjs'))});
    let refused = '';
    try { net.connect({ host: '192.0.2.1', port: 9 }); } catch (e) { refused = e.message; }
    let loopback = '';
    try { net.connect({ host: '127.0.0.1', port: 9 }); } catch (e) { loopback = e.message; }
    process.exitCode = 0;
    console.log(JSON.stringify({ refused, loopback, calls: calls.length }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
  const result = JSON.parse(stdout) as { refused: string; loopback: string; calls: number };
  assert.match(result.refused, /no-network: connection to 192\.0\.2\.1 refused/);
  assert.equal(result.loopback, 'real connect reached', 'loopback passes through to the real connect');
  assert.equal(result.calls, 1, 'only the loopback call reached connect');
});

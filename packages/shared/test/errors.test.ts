import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderConfigurationDoc, renderErrorsDoc } from '../src/docs.ts';
import { ERRORS, GatewayError, fromErrorBody, isGatewayError, toErrorBody } from '../src/errors.ts';

const root = new URL('../../../', import.meta.url);

test('docs/errors.md is in step with the error registry', () => {
  assert.equal(readFileSync(new URL('docs/errors.md', root), 'utf8'), renderErrorsDoc(), 'run: node scripts/gen-docs.ts');
});

test('docs/configuration.md is in step with the config schema', () => {
  assert.equal(readFileSync(new URL('docs/configuration.md', root), 'utf8'), renderConfigurationDoc(), 'run: node scripts/gen-docs.ts');
});

test('every code has a 4xx or 5xx status and a message', () => {
  for (const [code, spec] of Object.entries(ERRORS)) {
    assert.ok(spec.status >= 400 && spec.status < 600, code);
    assert.ok(spec.message.length > 0, code);
  }
});

test('errors cross a process boundary as {code, message, details} and are rebuilt by code', () => {
  const original = new GatewayError('SESSION_NOT_FOUND', 'No session "x".', { id: 'x' });
  const wire = JSON.parse(JSON.stringify(toErrorBody(original))) as unknown as Record<string, unknown>;
  const rebuilt = fromErrorBody(wire);
  assert.equal(rebuilt.code, 'SESSION_NOT_FOUND');
  assert.equal(rebuilt.status, 404);
  assert.equal(rebuilt.message, 'No session "x".');
  assert.deepEqual(rebuilt.details, { id: 'x' });
});

test('unknown errors become INTERNAL without leaking their text', () => {
  const body = toErrorBody(new Error('secret database password in message'));
  assert.deepEqual(body, { code: 'INTERNAL', message: ERRORS.INTERNAL.message });
  assert.equal(fromErrorBody({ code: 'NOPE', message: 'x' }).code, 'INTERNAL');
});

test('isGatewayError matches on a registry code, not on the class', () => {
  assert.equal(isGatewayError(new GatewayError('SESSION_NOT_FOUND')), true);
  // an error of another copy of the module (or rebuilt by hand) with a registry code still counts
  assert.equal(isGatewayError(Object.assign(new Error('gone'), { code: 'SESSION_NOT_FOUND' })), true);
  assert.equal(isGatewayError(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })), false);
  assert.equal(isGatewayError({ code: 'SESSION_NOT_FOUND', message: 'not an Error' }), false);
  assert.equal(isGatewayError(undefined), false);
});

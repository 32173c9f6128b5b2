import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  canonicalJson,
  decideIdempotency,
  deriveMessageId,
  parseIdempotencyKey,
  requestFingerprint,
  shouldStoreOutcome,
  type IdempotencyRecord,
} from '../src/api/idempotency.ts';
import { createMessageSchemas, parseOrThrow } from '../src/api/messages.ts';

test('parseIdempotencyKey accepts 1-255 printable ASCII, unquotes a structured-field string', () => {
  assert.equal(parseIdempotencyKey(undefined), undefined);
  assert.equal(parseIdempotencyKey('8e03978e-40d5-43e8-bc93-6894a57f9324'), '8e03978e-40d5-43e8-bc93-6894a57f9324');
  assert.equal(parseIdempotencyKey('"8e03978e-40d5"'), '8e03978e-40d5');
  assert.equal(parseIdempotencyKey(' abc '), 'abc');
  assert.equal(parseIdempotencyKey(['k1', 'k1']), 'k1');
  assert.equal(parseIdempotencyKey('x'.repeat(255)), 'x'.repeat(255));
  for (const bad of ['', '   ', '""', 'x'.repeat(256), 'ключ', 'a\u0000b', 'tab\there', '" padded "']) {
    assert.throws(() => parseIdempotencyKey(bad), { code: 'INVALID_IDEMPOTENCY_KEY', status: 400 }, JSON.stringify(bad));
  }
  assert.throws(() => parseIdempotencyKey(['k1', 'k2']), { code: 'INVALID_IDEMPOTENCY_KEY' });
});

test('canonicalJson is independent of key order and drops undefined', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } }), '{"a":{"d":[1,{"y":2,"z":1}]},"b":1}');
  assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
});

test('the fingerprint is over the normalized body: phone spellings of one recipient give one fingerprint', () => {
  const s = createMessageSchemas({ defaultCountry: 'ID' });
  const fp = (body: unknown, path = '/api/v1/sessions/s1/messages') =>
    requestFingerprint({ method: 'post', path, body: parseOrThrow(s.sendMessage, body) });
  const a = fp({ to: '087733760363', type: 'text', text: 'hi' });
  assert.equal(a, fp({ text: 'hi', type: 'text', to: '+62 877-3376-0363' }));
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(a, fp({ to: '087733760363', type: 'text', text: 'hi!' }));
  assert.notEqual(a, fp({ to: '087733760363', type: 'text', text: 'hi' }, '/api/v1/sessions/s2/messages'));
});

test('decideIdempotency: new, replay, mismatch (422), in progress (409 with retry-after), takeover after the lock expired', () => {
  const fp = 'f1';
  assert.deepEqual(decideIdempotency(undefined, fp, 1000), { action: 'proceed', takeover: false });
  const done: IdempotencyRecord = { state: 'done', fingerprint: fp, status: 201, body: { id: '3EB0AA', status: 'sent' }, completedAt: 900 };
  assert.deepEqual(decideIdempotency(done, fp, 1000), { action: 'replay', status: 201, body: { id: '3EB0AA', status: 'sent' } });
  const mismatch = decideIdempotency(done, 'f2', 1000);
  assert.equal(mismatch.action === 'reject' && mismatch.error.code, 'IDEMPOTENCY_KEY_REUSED');
  assert.equal(mismatch.action === 'reject' && mismatch.error.status, 422);
  const running: IdempotencyRecord = { state: 'in-progress', fingerprint: fp, lockedUntil: 5000 };
  const busy = decideIdempotency(running, fp, 1000);
  assert.equal(busy.action === 'reject' && busy.error.code, 'IDEMPOTENCY_IN_PROGRESS');
  assert.equal(busy.action === 'reject' && busy.error.status, 409);
  assert.equal(busy.action === 'reject' && busy.error.details?.['retryAfterMs'], 4000);
  const otherBodyWhileRunning = decideIdempotency(running, 'f2', 1000);
  assert.equal(otherBodyWhileRunning.action === 'reject' && otherBodyWhileRunning.error.code, 'IDEMPOTENCY_KEY_REUSED');
  assert.deepEqual(decideIdempotency(running, fp, 5000), { action: 'proceed', takeover: true });
});

test('deriveMessageId is stable per (session, key), distinct across sessions and keys, Baileys-shaped', () => {
  const id = deriveMessageId('s1', 'k1');
  assert.match(id, /^3EB0[0-9A-F]{18}$/);
  assert.equal(id, deriveMessageId('s1', 'k1'));
  assert.notEqual(id, deriveMessageId('s2', 'k1'));
  assert.notEqual(id, deriveMessageId('s1', 'k2'));
  assert.notEqual(deriveMessageId('s1', 'k\u00001'), deriveMessageId('s1\u0000k', '1'));
});

test('shouldStoreOutcome keeps definite answers and releases the key when nothing was sent or the outcome is unknown', () => {
  assert.equal(shouldStoreOutcome(201), true);
  assert.equal(shouldStoreOutcome(400, 'VALIDATION_FAILED'), true);
  assert.equal(shouldStoreOutcome(404, 'MESSAGE_NOT_FOUND'), true);
  assert.equal(shouldStoreOutcome(429, 'QUEUE_FULL'), false);
  assert.equal(shouldStoreOutcome(429, 'QUEUE_TIMEOUT'), false);
  assert.equal(shouldStoreOutcome(409, 'SESSION_NOT_CONNECTED'), false);
  assert.equal(shouldStoreOutcome(503, 'SHARD_CRASHED'), false);
  assert.equal(shouldStoreOutcome(504, 'WA_TIMEOUT'), false);
});

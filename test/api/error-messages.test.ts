// A bad phone number's 400 through the real gateway, wherever a recipient is read (body, query, path): code
// INVALID_PHONE, a message of one short sentence naming the field and the reason, and the accepted formats once,
// as data in `details.accepted` (not repeated in the message or per field). A non-string recipient is a short
// VALIDATION_FAILED. Registry messages: packages/shared/test/error-messages.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptedFormats } from '@wagw/shared';
import { gatewayWithDocument } from './document.ts';

interface ErrorBody {
  error: { code: string; message: string; details?: { accepted?: string[]; fields?: { field: string; message: string; reason?: string; accepted?: unknown }[] } };
}

test('a bad phone number is a short INVALID_PHONE with the formats in details', { timeout: 120_000 }, async (t) => {
  const { gw } = await gatewayWithDocument(t);
  assert.equal((await gw.api.post('/api/v1/sessions', { id: 'e1' })).status, 201);
  const cases = [
    { method: 'POST', path: '/api/v1/sessions/e1/messages', body: { type: 'text', to: '12ab', text: 'x' }, field: 'body.to', formats: acceptedFormats() },
    { method: 'GET', path: '/api/v1/sessions/e1/messages?chat=12ab', body: undefined, field: 'query.chat', formats: acceptedFormats() },
    { method: 'GET', path: '/api/v1/sessions/e1/contacts/12ab/exists', body: undefined, field: 'params.phone', formats: acceptedFormats(['user']) },
    { method: 'POST', path: '/api/v1/sessions/e1/presence', body: { state: 'composing', to: 'x@y' }, field: 'body.to', formats: acceptedFormats() },
  ];
  for (const c of cases) {
    const r = await gw.api.call<ErrorBody>(c.method, c.path, c.body);
    const what = `${c.method} ${c.path}`;
    assert.equal(r.status, 400, what);
    const { code, message, details } = r.body.error;
    assert.equal(code, 'INVALID_PHONE', what);
    assert.ok(message.length <= 120, `${what}: ${message.length} characters: ${message}`);
    assert.match(message, new RegExp(`^Invalid request: ${c.field.replace('.', '\\.')}: ".+" is not a recipient: [^;]+\\.$`), what);
    assert.doesNotMatch(message, /international|Accepted/, `${what}: no list in the message`);
    assert.deepEqual(details?.accepted, c.formats, what);
    assert.equal(details?.fields?.[0]?.field, c.field, what);
    assert.ok(typeof details?.fields?.[0]?.reason === 'string', what);
    assert.equal(details?.fields?.[0]?.accepted, undefined, `${what}: the list once`);
    assert.ok(r.raw.length < 1200, `${what}: ${r.raw.length} bytes`);
  }
  const notString = await gw.api.call<ErrorBody>('POST', '/api/v1/sessions/e1/messages', { type: 'text', to: 5, text: 'x' });
  assert.equal(notString.status, 400);
  assert.equal(notString.body.error.code, 'VALIDATION_FAILED');
  assert.equal(notString.body.error.message, 'Invalid request: body.to: must be a phone number or JID as a string, e.g. +6287733760363');
});

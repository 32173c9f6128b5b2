// Every registry message is one short sentence a person can read (lists and data belong in `details`).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ERRORS } from '../src/errors.ts';

test('each error code has a one-sentence message of at most 90 characters', () => {
  for (const [code, spec] of Object.entries(ERRORS)) {
    assert.ok(spec.message.length <= 90, `${code}: ${spec.message.length} characters`);
    assert.match(spec.message, /^[A-Z].*\.$/, `${code}: a sentence`);
    assert.doesNotMatch(spec.message.slice(0, -1), /[.;]\s/, `${code}: one sentence`);
  }
});

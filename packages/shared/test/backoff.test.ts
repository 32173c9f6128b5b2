import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from '../src/backoff.ts';

const at = (r: number) => () => r;

test('equal jitter waits between half and all of the doubling ceiling', () => {
  assert.equal(backoffDelay(1, 1000, 60_000, { random: at(0) }), 500);
  assert.equal(backoffDelay(1, 1000, 60_000, { random: at(0.999999) }), 1000);
  assert.equal(backoffDelay(3, 1000, 60_000, { random: at(0) }), 2000);
  assert.equal(backoffDelay(3, 1000, 60_000, { random: at(0.5) }), 3000);
});

test('equal jitter is the default', () => {
  assert.equal(backoffDelay(2, 1000, 60_000, { random: at(0) }), backoffDelay(2, 1000, 60_000, { jitter: 'equal', random: at(0) }));
});

test('full jitter may retry at once and never exceeds the ceiling', () => {
  assert.equal(backoffDelay(4, 100, 60_000, { jitter: 'full', random: at(0) }), 0);
  assert.equal(backoffDelay(4, 100, 60_000, { jitter: 'full', random: at(0.5) }), 400);
});

test('the cap holds for any attempt count, however large', () => {
  assert.equal(backoffDelay(10_000, 1000, 60_000, { jitter: 'full', random: at(0.999999) }), 60_000);
  assert.equal(backoffDelay(10_000, 1000, 60_000, { random: at(0) }), 30_000);
  assert.equal(backoffDelay(0, 1000, 60_000, { random: at(0) }), 500);
});

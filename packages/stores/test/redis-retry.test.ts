import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redisRetryDelay } from '../src/index.ts';

test('Redis reconnects back off exponentially, capped at 2 s, with jitter (no lockstep after a Redis restart)', () => {
  assert.equal(redisRetryDelay(1, () => 0), 100);
  assert.equal(redisRetryDelay(1, () => 1), 200);
  assert.equal(redisRetryDelay(30, () => 0), 1_000);
  assert.equal(redisRetryDelay(30, () => 1), 2_000);
  assert.notEqual(redisRetryDelay(4, () => 0.1), redisRetryDelay(4, () => 0.8), 'two clients retrying together are spread');
});

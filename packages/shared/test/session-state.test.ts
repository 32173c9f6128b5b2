import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SESSION_STATES, canTransition, isSessionState } from '../src/session-state.ts';

test('terminal states can only start again', () => {
  for (const from of ['disconnected', 'logged_out', 'failed'] as const) {
    for (const to of SESSION_STATES) assert.equal(canTransition(from, to), to === 'starting', `${from} -> ${to}`);
  }
});

test('connected never goes back to qr without a reconnect', () => {
  assert.equal(canTransition('connected', 'qr'), false);
  assert.equal(canTransition('connected', 'reconnecting'), true);
  assert.equal(canTransition('reconnecting', 'connected'), true);
});

test('isSessionState accepts exactly the states of the brief', () => {
  assert.deepEqual([...SESSION_STATES], ['starting', 'qr', 'pairing', 'connected', 'reconnecting', 'disconnected', 'logged_out', 'failed']);
  assert.equal(isSessionState('open'), false);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../src/config.ts';

const ROOT = Buffer.alloc(32, 7).toString('base64');

test('media fetch settings: private media URLs off by default, budget 4 x MEDIA_MAX_BYTES unless set', () => {
  const c = loadConfig({ MEDIA_MAX_BYTES: '1048576' });
  assert.equal(c.messaging.media.allowPrivate, false);
  assert.equal(c.messaging.media.downloadBudgetBytes, 4 * 1048576);
  assert.equal(loadConfig({ MEDIA_URL_ALLOW_PRIVATE: 'true' }).messaging.media.allowPrivate, true);
  assert.throws(() => loadConfig({ MEDIA_MAX_BYTES: '1048576', MEDIA_DOWNLOAD_BUDGET_BYTES: '1024' }), /MEDIA_DOWNLOAD_BUDGET_BYTES: must be at least MEDIA_MAX_BYTES/);
});

test('WA_MEDIA_HOST is for the simulator only: refused without WA_ROOT_PUBLIC_KEY', () => {
  assert.throws(() => loadConfig({ WA_MEDIA_HOST: '127.0.0.1:4443' }), /WA_MEDIA_HOST: only for the simulator/);
  assert.throws(() => loadConfig({ WA_ROOT_PUBLIC_KEY: ROOT, WA_MEDIA_HOST: 'https://127.0.0.1:4443/' }), /WA_MEDIA_HOST: must be host:port/);
  assert.equal(loadConfig({ WA_ROOT_PUBLIC_KEY: ROOT, WA_MEDIA_HOST: '127.0.0.1:4443' }).wa.mediaHost, '127.0.0.1:4443');
  assert.equal(loadConfig({ WA_ROOT_PUBLIC_KEY: ROOT, WA_MEDIA_HOST: '[::1]:4443' }).wa.mediaHost, '[::1]:4443');
});

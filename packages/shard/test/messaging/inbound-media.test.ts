// Issue #10 item 2: the URL of an inbound message's media is built from WhatsApp's media hosts, never taken
// from what the sender wrote. (The bounded, aborted download is proven end to end in test/security/media-ssrf.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inboundMediaUrl } from '../../src/messaging/inbound-media.ts';
import { FetchFailure } from '../../src/messaging/public-http.ts';

const refused = (e: unknown) => e instanceof FetchFailure && e.reason === 'refused';

test('inbound media: only https WhatsApp media hosts on port 443, with a clean directPath', () => {
  const path = '/v/t62.7118-24/abc.enc?ccb=11-4&oh=x';
  assert.equal(inboundMediaUrl({ url: 'https://mmg.whatsapp.net/o1/v/x', directPath: path }, {}).href, `https://mmg.whatsapp.net${path}`);
  assert.equal(inboundMediaUrl({ url: 'https://media-sin6-1.cdn.whatsapp.net/v/x', directPath: path }, {}).host, 'media-sin6-1.cdn.whatsapp.net');
  assert.equal(inboundMediaUrl({ directPath: path }, {}).host, 'mmg.whatsapp.net');
  for (const url of [
    'https://127.0.0.1:8443/v/x',
    'http://mmg.whatsapp.net/v/x',
    'https://mmg.whatsapp.net:8443/v/x',
    'https://mmg.whatsapp.net.evil.example/v/x',
    'https://evilwhatsapp.net/v/x',
    'https://169.254.169.254/latest',
    'not a url',
  ]) {
    assert.throws(() => inboundMediaUrl({ url, directPath: path }, {}), refused, url);
  }
  for (const directPath of ['v/x.enc', '//169.254.169.254/x', '/v/x@169.254.169.254', '/v\\x', '/v/ x']) {
    assert.throws(() => inboundMediaUrl({ url: 'https://mmg.whatsapp.net/v/x', directPath }, {}), refused, directPath);
  }
  assert.throws(() => inboundMediaUrl({}, {}), refused);
});

test('inbound media: the simulator host (simulator mode only) is allowed exactly, port included', () => {
  const sim = { simulatorHost: '127.0.0.1:4443' };
  assert.equal(inboundMediaUrl({ url: 'https://127.0.0.1:4443/v/x', directPath: '/v/y.enc' }, sim).href, 'https://127.0.0.1:4443/v/y.enc');
  assert.throws(() => inboundMediaUrl({ url: 'https://127.0.0.1:4444/v/x', directPath: '/v/y.enc' }, sim), refused);
  assert.throws(() => inboundMediaUrl({ url: 'https://127.0.0.1:4443/v/x', directPath: '/v/y.enc' }, {}), refused);
});

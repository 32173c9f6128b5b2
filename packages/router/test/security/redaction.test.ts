import { it } from 'node:test';
import assert from 'node:assert/strict';
import { generateApiKey } from '../../src/security/index.ts';
import { captureLogger } from './helpers.ts';

it('tokens, API keys, message bodies and phone numbers never reach an info log line', () => {
  const cap = captureLogger('info');
  const key = generateApiKey().key;
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtc3ViIn0.c2lnbmF0dXJlLXZhbHVl';
  const phone = '+6287733760363';
  const jid = '6287733760363@s.whatsapp.net';
  const text = 'the quick private message body';
  const log = cap.logger.child({ reqId: 'r1' });
  log.info({ req: { headers: { authorization: `Bearer ${jwt}`, 'x-api-key': key, cookie: 'sid=abc-cookie' } } }, 'request');
  log.info({ headers: { authorization: `Bearer ${jwt}`, 'x-api-key': key } }, 'outgoing');
  log.info({ apiKey: key, token: jwt, metricsToken: 'metrics-token-xyz' }, 'credentials');
  log.info({ to: phone, text, caption: text, phone, jid, from: jid, remoteJid: jid, participant: jid }, 'send');
  log.info({ message: { to: phone, text, caption: text, jid, from: jid } }, 'nested send');
  log.info({ body: { to: phone, text, phone } }, 'request body');
  const out = cap.text();
  for (const secret of [jwt, key, 'abc-cookie', 'metrics-token-xyz', phone, '6287733760363', text]) {
    assert.ok(!out.includes(secret), `${secret} leaked into: ${out}`);
  }
  assert.ok(out.includes('[redacted]'));
  assert.equal(cap.lines.length, 6, 'every line was still written');
});

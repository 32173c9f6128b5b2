import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isNonPublicAddress, validateWebhookUrl } from '../../src/security/index.ts';

/** A resolver that answers from a table (tests never depend on real DNS). */
const resolver = (table: Record<string, string[]>) => async (host: string) => {
  const list = table[host];
  if (list === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

const dns = resolver({
  'hooks.example.com': ['93.184.216.34'],
  'v6.example.com': ['2606:2800:220:1:248:1893:25c8:1946'],
  'internal.example.com': ['10.1.2.3'],
  'mixed.example.com': ['93.184.216.34', '127.0.0.1'],
  'metadata.example.com': ['169.254.169.254'],
  'mapped.example.com': ['::ffff:192.168.1.1'],
});

describe('webhook target URL validation', () => {
  const accepted = ['https://hooks.example.com/wa', 'http://hooks.example.com:8080/x?y=1', 'https://v6.example.com/', 'https://93.184.216.34/', 'https://[2606:2800:220:1:248:1893:25c8:1946]/'];
  for (const url of accepted) {
    it(`accepts ${url}`, async () => {
      const u = await validateWebhookUrl(url, { allowPrivate: false, lookup: dns });
      assert.ok(u instanceof URL);
    });
  }

  const refused: [string, RegExp][] = [
    ['ftp://hooks.example.com/', /http or https/],
    ['javascript:alert(1)', /http or https/],
    ['not a url', /not a valid absolute URL/],
    ['https://user:pass@hooks.example.com/', /must not contain credentials/],
    ['https://token@hooks.example.com/', /must not contain credentials/],
    ['http://127.0.0.1:8080/', /non-public/],
    ['http://localhost/', /this machine/],
    ['http://api.localhost/', /this machine/],
    ['http://2130706433/', /non-public/], // 127.0.0.1 as a number
    ['http://0x7f.1/', /non-public/],
    ['http://0.0.0.0/', /non-public/],
    ['http://10.0.0.1/', /non-public/],
    ['http://172.16.5.4/', /non-public/],
    ['http://192.168.0.10/', /non-public/],
    ['http://100.64.0.1/', /non-public/], // CGNAT
    ['http://169.254.169.254/latest/meta-data', /non-public/],
    ['http://224.0.0.1/', /non-public/],
    ['http://255.255.255.255/', /non-public/],
    ['http://[::1]/', /non-public/],
    ['http://[::]/', /non-public/],
    ['http://[fe80::1]/', /non-public/],
    ['http://[fd00::1]/', /non-public/],
    ['http://[ff02::1]/', /non-public/],
    ['http://[::ffff:127.0.0.1]/', /non-public/], // IPv4-mapped loopback
    ['http://[::ffff:a9fe:a9fe]/', /non-public/], // IPv4-mapped metadata address
    ['https://internal.example.com/', /non-public/],
    ['https://mixed.example.com/', /non-public/], // one bad address is enough
    ['https://metadata.example.com/', /non-public/],
    ['https://mapped.example.com/', /non-public/],
    ['https://nxdomain.example.com/', /does not resolve/],
  ];
  for (const [url, why] of refused) {
    it(`refuses ${url}`, async () => {
      await assert.rejects(validateWebhookUrl(url, { allowPrivate: false, lookup: dns }), (err: unknown) => {
        const e = err as { code?: string; status?: number; message?: string; details?: Record<string, unknown> };
        return e.code === 'VALIDATION_FAILED' && e.status === 400 && why.test(e.message ?? '') && e.details?.['field'] === 'webhookUrl';
      });
    });
  }

  it('allowPrivate admits private targets but still checks scheme and credentials', async () => {
    assert.ok(await validateWebhookUrl('http://127.0.0.1:9999/hook', { allowPrivate: true }));
    await assert.rejects(validateWebhookUrl('http://u:p@127.0.0.1/', { allowPrivate: true }), /credentials/);
    await assert.rejects(validateWebhookUrl('file:///etc/passwd', { allowPrivate: true }), /http or https/);
  });

  it('isNonPublicAddress table', () => {
    for (const a of ['127.0.0.1', '10.0.0.1', '100.127.255.255', '::1', '::ffff:10.0.0.1', '64:ff9b::a00:1', '2001:db8::1', 'fc00::1', 'not-an-ip']) assert.equal(isNonPublicAddress(a), true, a);
    for (const a of ['8.8.8.8', '1.1.1.1', '100.128.0.1', '::ffff:8.8.8.8', '2606:4700:4700::1111']) assert.equal(isNonPublicAddress(a), false, a);
  });
});

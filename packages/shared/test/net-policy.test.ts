import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ADDRESS_REFUSED, assertPublicUrlHost, isNonPublicAddress, publicOnlyLookup } from '../src/index.ts';
import type { BaseLookup } from '../src/index.ts';

describe('net policy: the one non-public address table', () => {
  it('refuses IPv4-compatible and IPv4-translated IPv6 spellings of loopback (issue #10 item 13)', () => {
    for (const a of ['::7f00:1', '::127.0.0.1', '::ffff:0:7f00:1', '::ffff:0:127.0.0.1', '::a9fe:a9fe', '::8.8.8.8']) assert.equal(isNonPublicAddress(a), true, a);
  });

  it('judges every spelling of an IPv4-mapped address by the IPv4 address inside', () => {
    for (const a of ['::ffff:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:1', '::FFFF:A9FE:A9FE', '64:ff9b::a00:1']) assert.equal(isNonPublicAddress(a), true, a);
    for (const a of ['::ffff:8.8.8.8', '0:0:0:0:0:ffff:808:808', '64:ff9b::808:808']) assert.equal(isNonPublicAddress(a), false, a);
  });

  it('keeps the rest of the table', () => {
    for (const a of ['127.0.0.1', '10.0.0.1', '169.254.169.254', '100.127.255.255', '::1', '::', 'fe80::1', 'fe80::1%eth0', 'fc00::1', '2001:db8::1', 'not-an-ip']) assert.equal(isNonPublicAddress(a), true, a);
    for (const a of ['8.8.8.8', '1.1.1.1', '100.128.0.1', '2606:4700:4700::1111']) assert.equal(isNonPublicAddress(a), false, a);
  });

  it('refuses literal and loopback-name hosts before any lookup', () => {
    for (const u of ['http://127.0.0.1/', 'http://[::7f00:1]/', 'http://[::ffff:0:7f00:1]/', 'http://localhost:8080/', 'http://a.localhost/', 'http://169.254.169.254/']) {
      assert.throws(() => assertPublicUrlHost(new URL(u)), (e: NodeJS.ErrnoException) => e.code === ADDRESS_REFUSED, u);
    }
    assert.doesNotThrow(() => assertPublicUrlHost(new URL('https://8.8.8.8/')));
  });

  it('the lookup refuses a name when any of its addresses is non-public, and passes public ones', async () => {
    const answers: Record<string, { address: string; family: number }[]> = {
      'internal.test': [{ address: '10.1.2.3', family: 4 }],
      'mixed.test': [{ address: '8.8.8.8', family: 4 }, { address: '::7f00:1', family: 6 }],
      'public.test': [{ address: '8.8.4.4', family: 4 }],
    };
    const base: BaseLookup = (host, cb) => cb(null, answers[host] ?? []);
    const lookup = publicOnlyLookup(base);
    const run = (host: string, all: boolean) =>
      new Promise<unknown>((resolve, reject) => lookup(host, { all }, (err, address) => (err === null ? resolve(address) : reject(err))));
    await assert.rejects(run('internal.test', false), (e: NodeJS.ErrnoException) => e.code === ADDRESS_REFUSED && !/10\.1\.2\.3/.test(e.message));
    await assert.rejects(run('mixed.test', true), (e: NodeJS.ErrnoException) => e.code === ADDRESS_REFUSED);
    assert.equal(await run('public.test', false), '8.8.4.4');
    assert.deepEqual(await run('public.test', true), [{ address: '8.8.4.4', family: 4 }]);
  });
});

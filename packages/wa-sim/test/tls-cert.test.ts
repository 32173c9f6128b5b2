// Regression: the media certificate's random serial was sometimes encoded with a leading 0x00 byte, which
// OpenSSL rejects ("illegal padding"), so about 1 simulator start in 128 served media nobody could fetch.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { generateSelfSignedCert } from '../src/tls-cert.ts';

test('every generated media certificate parses (serial is a minimal positive DER integer)', () => {
  for (let i = 0; i < 3000; i++) {
    const cert = new X509Certificate(generateSelfSignedCert(['127.0.0.1']).certPem);
    assert.ok(/^[4-7]/.test(cert.serialNumber), `serial ${cert.serialNumber} starts with a byte in 0x40-0x7f`);
  }
});

test('the certificate covers the simulator host names and is self-signed', () => {
  const cert = new X509Certificate(generateSelfSignedCert(['sim.local']).certPem);
  assert.ok(cert.checkHost('localhost'));
  assert.ok(cert.checkHost('sim.local'));
  assert.ok(cert.checkIP('127.0.0.1'));
  assert.ok(cert.verify(cert.publicKey), 'self-signed');
});

#!/usr/bin/env node
// Standalone simulator: `node packages/wa-sim/src/cli.ts [--port 7780] [--media-port 7781] [--host 127.0.0.1]
// [--receipt-delay-ms 300] [--log-level info]`. Prints its URLs and the root key, writes the media CA to a file.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WaSimulator } from './simulator.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '7780' },
    'media-port': { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'receipt-delay-ms': { type: 'string', default: '300' },
    'log-level': { type: 'string', default: 'info' },
    'ca-file': { type: 'string' },
  },
});

const sim = await WaSimulator.create({
  port: Number(values.port),
  mediaPort: Number(values['media-port']),
  host: values.host,
  receiptDelayMs: Number(values['receipt-delay-ms']),
  logLevel: values['log-level'],
});
const caFile = values['ca-file'] ?? join(tmpdir(), `wa-sim-media-ca-${process.pid}.pem`);
writeFileSync(caFile, sim.mediaCaPem);
process.stdout.write(
  [
    'wa-sim is running',
    `  WebSocket (waWebSocketUrl): ${sim.urls.ws}`,
    `  Admin API:                  ${sim.urls.admin}   (GET / lists the routes)`,
    `  Media (HTTPS):              ${sim.urls.media}`,
    `  Media CA certificate:       ${caFile}   (NODE_EXTRA_CA_CERTS=${caFile} for a client process)`,
    `  Root public key (base64):   ${sim.rootPublicKey.toString('base64')}   (set WA_CERT_DETAILS.PUBLIC_KEY)`,
    '',
  ].join('\n'),
);
const stop = (): void => {
  sim.close().then(() => process.exit(0), () => process.exit(1));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

/**
 * The bare-Baileys baseline for bench/scale.ts: one process with N plain makeWASocket sockets (credentials
 * from a file the bench wrote, in-memory Signal keys, no gateway around them) against the same simulator.
 * Prints `connected <n>` lines and `ready` when all are open; the bench reads this process's RSS and CPU.
 *
 *   node bench/scale-bare.ts <creds.json> <wsUrl> <rootPublicKeyBase64>
 */
import { readFileSync } from 'node:fs';
import { BufferJSON, makeWASocket, WA_CERT_DETAILS } from '@whiskeysockets/baileys';
import type { AuthenticationCreds, KeyPair, SignalDataTypeMap } from '@whiskeysockets/baileys';

const [file, wsUrl, root] = process.argv.slice(2);
if (!file || !wsUrl || !root) throw new Error('usage: scale-bare.ts <creds.json> <wsUrl> <rootPublicKeyBase64>');
// The simulator signs its Noise certificates with its own root (the same switch the shard sets in setup.ts).
(WA_CERT_DETAILS as { PUBLIC_KEY: Buffer }).PUBLIC_KEY = Buffer.from(root, 'base64');
// Each entry: the creds and the prekeys bench/provision.ts minted (the simulator holds their public halves).
const all = JSON.parse(readFileSync(file, 'utf8'), BufferJSON.reviver) as { creds: AuthenticationCreds; preKeys: Record<string, KeyPair> }[];

const silent = { level: 'silent', child: () => silent, trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {} };
let open = 0;
let closed = 0;
const concurrency = Number(process.env['BARE_CONCURRENCY'] ?? '16');
let next = 0;
async function one({ creds, preKeys }: (typeof all)[number]): Promise<void> {
  const keys: Record<string, Record<string, unknown>> = { 'pre-key': preKeys };
  await new Promise<void>((resolve) => {
    const sock = makeWASocket({
      waWebSocketUrl: wsUrl,
      auth: {
        creds,
        keys: {
          get: async (type, ids) => Object.fromEntries(ids.map((id) => [id, keys[type]?.[id]])) as { [id: string]: SignalDataTypeMap[typeof type] },
          set: async (data) => {
            for (const [type, entries] of Object.entries(data)) Object.assign((keys[type] ??= {}), entries);
          },
        },
      },
      logger: silent as never,
      printQRInTerminal: false,
      markOnlineOnConnect: false,
      syncFullHistory: false,
    });
    let wasOpen = false;
    sock.ev.on('connection.update', (u) => {
      if (u.connection === 'open') {
        wasOpen = true;
        open++;
        if (open % 100 === 0) process.stdout.write(`connected ${open}\n`);
        resolve();
      } else if (u.connection === 'close') {
        // No reconnect here: a socket that closes is gone, and the figures would be those of fewer sockets.
        closed++;
        process.stdout.write(`closed ${closed} (${wasOpen ? 'after open' : 'before open'}: ${String((u.lastDisconnect?.error as { output?: { statusCode?: number } } | undefined)?.output?.statusCode ?? u.lastDisconnect?.error?.message)})\n`);
        if (wasOpen) open--;
        resolve();
      }
    });
  });
}
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < all.length) await one(all[next++] as (typeof all)[number]);
  }),
);
process.stdout.write(`ready ${open}\n`);
setInterval(() => undefined, 1 << 30);

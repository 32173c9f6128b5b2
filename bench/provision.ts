/**
 * Fast provisioning for benches and load tests (issue #17): N sessions that are already linked, without a
 * QR scan each. Pairing itself stays covered by test/sessions (pairByQr, pairing-sequence.test.ts).
 *
 * For each session: fresh Baileys credentials (initAuthCreds) and a small set of one-time prekeys in its key
 * store, a device registered with the simulator through its admin HTTP API (`POST /provision`, one call per
 * batch, creates a phone and a linked companion device that logs in with this Noise key and holds the
 * device's public identity, signed prekey and those prekeys, as the real server holds them for a device that
 * uploaded its keys when it paired), the auth state written with the gateway's own BlobAuthState (the same
 * objects a shard reads back: its load snapshot, then one log with the final creds and the prekeys), and a
 * `sessions` row with desired = 'running' so the router restores it at start (one INSERT per batch).
 *
 * Prekeys: Baileys uploads prekeys at login only when the server reports at most MIN_PREKEY_COUNT (5) or when
 * the newest prekey it minted is missing from its store (socket.js uploadPreKeysToServerIfRequired). A real
 * relogin from stored state finds both fine and uploads nothing; with PROVISION_PREKEYS (> 5) registered here
 * and stored in the key store, a provisioned login does the same. The simulator hands them out to senders and
 * asks for more when few are left (`encrypt` notification), as the real server does.
 *
 * The account signature in `creds.account` is a placeholder: the simulator relays `device-identity` without
 * checking it, and this code never talks to the real WhatsApp. Production code never imports this file.
 */
import { randomBytes } from 'node:crypto';
import { BlobAuthState } from '@wagw/shard/auth';
import type { BlobStore, Logger, SqlClient } from '@wagw/shared';
import { Curve, proto } from '@whiskeysockets/baileys';
import type { AuthenticationCreds, KeyPair } from '@whiskeysockets/baileys';
import { mapLimit } from '../test/sessions/helpers.ts';

export interface ProvisionOptions {
  /** The simulator's admin base URL (`sim.urls.admin`); loopback only. */
  adminUrl: string;
  blobs: BlobStore;
  sql: SqlClient;
  logger: Logger;
  /** Session ids to create (each gets its own simulated phone). */
  ids: readonly string[];
  /** Devices registered per admin call (and rows per INSERT). Default 500. */
  batch?: number;
  /** Auth-state writes in flight. Default 64. */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
  /** Insert the sessions rows (default true); false for bare-Baileys comparison sockets. */
  insertRows?: boolean;
  /** The rows' desired state (default 'running'; a bench that picks the first N per size inserts 'stopped'). */
  desired?: 'running' | 'stopped';
  /** Sees each session's final credentials and prekeys (the bare-Baileys comparison opens sockets with them). */
  onCreds?: (id: string, creds: AuthenticationCreds, preKeys: Record<string, KeyPair>) => void;
}

export interface ProvisionedSession {
  id: string;
  /** The simulated phone's number (the session's own account). */
  number: string;
  jid: string;
  lid: string;
}

interface SimProvisioned {
  number: string;
  jid: string;
  lid: string;
  device: number;
}

/** The epoch the bench writes at: below any lease epoch (those are floored at the clock), so a shard's load accepts it. */
const PROVISION_EPOCH = 1;

/** One-time prekeys minted per session: above Baileys' MIN_PREKEY_COUNT (5), so a login uploads none. */
export const PROVISION_PREKEYS = 12;

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

export async function provisionSessions(opts: ProvisionOptions): Promise<ProvisionedSession[]> {
  const admin = new URL(opts.adminUrl);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(admin.hostname) && !admin.hostname.startsWith('127.')) {
    throw new Error(`provisioning talks to a loopback simulator only, not ${admin.hostname}`);
  }
  const batch = opts.batch ?? 500;
  const concurrency = opts.concurrency ?? 64;
  const out: ProvisionedSession[] = [];
  for (let start = 0; start < opts.ids.length; start += batch) {
    const ids = opts.ids.slice(start, start + batch);
    // BlobAuthState.load creates the credentials (initAuthCreds) when the store holds none for the id.
    const states = await mapLimit(ids, concurrency, (id) =>
      BlobAuthState.load({ blobs: opts.blobs, sessionId: id, epoch: PROVISION_EPOCH, isCurrent: async () => true, logger: opts.logger }),
    );
    const preKeys = states.map((s) => {
      const creds = s.state.creds;
      const first = creds.nextPreKeyId;
      const keys: Record<string, KeyPair> = {};
      for (let i = 0; i < PROVISION_PREKEYS; i++) keys[String(first + i)] = Curve.generateKeyPair();
      return keys;
    });
    const res = await fetch(new URL('/provision', admin), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        devices: states.map((s, i) => {
          const c = s.state.creds;
          return {
            noiseKey: b64(c.noiseKey.public),
            identityKey: b64(c.signedIdentityKey.public),
            registrationId: c.registrationId,
            signedPreKey: { id: c.signedPreKey.keyId, public: b64(c.signedPreKey.keyPair.public), signature: b64(c.signedPreKey.signature) },
            preKeys: Object.entries(preKeys[i] ?? {}).map(([id, kp]) => ({ id: Number(id), public: b64(kp.public) })),
          };
        }),
      }),
    });
    if (!res.ok) throw new Error(`wa-sim POST /provision: ${res.status} ${await res.text()}`);
    const devices = (await res.json()) as SimProvisioned[];
    if (devices.length !== ids.length) throw new Error(`wa-sim provisioned ${devices.length} devices for ${ids.length} keys`);
    await mapLimit(states, concurrency, async (auth, i) => {
      const d = devices[i] as SimProvisioned;
      const creds = auth.state.creds;
      creds.me = { id: d.jid, lid: d.lid, name: `bench ${d.number}` };
      creds.registered = true;
      creds.platform = 'android';
      creds.account = {
        details: proto.ADVDeviceIdentity.encode({ rawId: 1, timestamp: Math.floor(Date.now() / 1000), keyIndex: d.device }).finish(),
        accountSignatureKey: randomBytes(32),
        accountSignature: randomBytes(64),
        deviceSignature: randomBytes(64),
      };
      creds.nextPreKeyId += PROVISION_PREKEYS;
      creds.firstUnuploadedPreKeyId = creds.nextPreKeyId;
      // Same tick: the prekeys and the creds go out as one batch (one log object).
      await Promise.all([auth.state.keys.set({ 'pre-key': preKeys[i] ?? {} }), auth.saveCreds()]);
      await auth.close();
      opts.onCreds?.(ids[i] as string, creds, preKeys[i] ?? {});
    });
    const rows = ids.map((id, i) => ({ id, me: devices[i] as SimProvisioned }));
    if (opts.insertRows !== false) await opts.sql.query(
      `INSERT INTO sessions (id, status, desired, me)
         SELECT x.id, 'starting', $2, x.me FROM jsonb_to_recordset($1::jsonb) AS x(id text, me jsonb)`,
      [JSON.stringify(rows.map((r) => ({ id: r.id, me: { phone: r.me.number, jid: r.me.jid, lid: r.me.lid } }))), opts.desired ?? 'running'],
    );
    for (const r of rows) out.push({ id: r.id, number: r.me.number, jid: r.me.jid, lid: r.me.lid });
    opts.onProgress?.(out.length, opts.ids.length);
  }
  return out;
}

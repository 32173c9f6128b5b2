/**
 * Fast provisioning for benches and load tests (issue #17): N sessions that are already linked, without a
 * QR scan each. Pairing itself stays covered by test/sessions (pairByQr, pairing-sequence.test.ts).
 *
 * For each session: fresh Baileys credentials (initAuthCreds), a device registered with the simulator
 * through its admin HTTP API (`POST /provision` creates a phone and a linked companion device that logs in
 * with this Noise key), the auth state written with the gateway's own BlobAuthState (the same objects a
 * shard reads back), and a `sessions` row with desired = 'running' so the router restores it at start.
 *
 * The account signature in `creds.account` is a placeholder: the simulator relays `device-identity` without
 * checking it, and this code never talks to the real WhatsApp. Production code never imports this file.
 */
import { randomBytes } from 'node:crypto';
import { BlobAuthState } from '@wagw/shard/auth';
import type { BlobStore, Logger, SqlClient } from '@wagw/shared';
import { proto } from '@whiskeysockets/baileys';
import type { AuthenticationCreds } from '@whiskeysockets/baileys';
import { mapLimit } from '../test/sessions/helpers.ts';

export interface ProvisionOptions {
  /** The simulator's admin base URL (`sim.urls.admin`); loopback only. */
  adminUrl: string;
  blobs: BlobStore;
  sql: SqlClient;
  logger: Logger;
  /** Session ids to create (each gets its own simulated phone). */
  ids: readonly string[];
  /** Devices registered per admin call. Default 200. */
  batch?: number;
  /** Auth-state writes in flight. Default 32. */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
  /** Insert the desired=running rows (default true); false for bare-Baileys comparison sockets. */
  insertRows?: boolean;
  /** Sees each session's final credentials (the bare-Baileys comparison opens sockets with them). */
  onCreds?: (id: string, creds: AuthenticationCreds) => void;
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

export async function provisionSessions(opts: ProvisionOptions): Promise<ProvisionedSession[]> {
  const admin = new URL(opts.adminUrl);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(admin.hostname) && !admin.hostname.startsWith('127.')) {
    throw new Error(`provisioning talks to a loopback simulator only, not ${admin.hostname}`);
  }
  const batch = opts.batch ?? 200;
  const concurrency = opts.concurrency ?? 32;
  const out: ProvisionedSession[] = [];
  for (let start = 0; start < opts.ids.length; start += batch) {
    const ids = opts.ids.slice(start, start + batch);
    // BlobAuthState.load creates the credentials (initAuthCreds) when the store holds none for the id.
    const states = await mapLimit(ids, concurrency, (id) =>
      BlobAuthState.load({ blobs: opts.blobs, sessionId: id, epoch: PROVISION_EPOCH, isCurrent: async () => true, logger: opts.logger }),
    );
    const res = await fetch(new URL('/provision', admin), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ noiseKeys: states.map((s) => Buffer.from(s.state.creds.noiseKey.public).toString('base64')) }),
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
      await auth.saveCreds();
      await auth.close();
      opts.onCreds?.(ids[i] as string, creds);
    });
    const rows = ids.map((id, i) => ({ id, me: devices[i] as SimProvisioned }));
    if (opts.insertRows !== false) await opts.sql.query(
      `INSERT INTO sessions (id, status, desired, me)
         SELECT x.id, 'starting', 'running', x.me FROM jsonb_to_recordset($1::jsonb) AS x(id text, me jsonb)`,
      [JSON.stringify(rows.map((r) => ({ id: r.id, me: { phone: r.me.number, jid: r.me.jid, lid: r.me.lid } })))],
    );
    for (const r of rows) out.push({ id: r.id, number: r.me.number, jid: r.me.jid, lid: r.me.lid });
    opts.onProgress?.(out.length, opts.ids.length);
  }
  return out;
}

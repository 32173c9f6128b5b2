/**
 * Provisioning on several cores (bench/scale.ts): the costly step per session is one XEdDSA signature (the
 * signed prekey in initAuthCreds, pure JS), so slices of the ids are provisioned in worker threads, each with
 * its own stores opened from the same environment. Progress and (optionally) the minted creds come back as
 * messages. Run as a worker only: `provisionInWorkers` below starts it.
 */
import os from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { createRootLogger, loadConfig } from '@wagw/shared';
import path from 'node:path';
import { LocalBlobStore, openSql, S3BlobStore } from '@wagw/stores';
import type { AuthenticationCreds, KeyPair } from '@whiskeysockets/baileys';
import { provisionSessions } from './provision.ts';
import type { ProvisionedSession } from './provision.ts';

export interface WorkerProvisionOptions {
  /** The gateway environment (DATABASE_URL, DATA_DIR or S3, REDIS_URL...): each worker opens its own stores. */
  env: Record<string, string>;
  adminUrl: string;
  ids: readonly string[];
  /** Worker threads (default: the cores, at most 4). */
  workers?: number;
  insertRows?: boolean;
  desired?: 'running' | 'stopped';
  /** Collect the minted creds and prekeys (the bare-Baileys baseline opens sockets with them). */
  wantCreds?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface WorkerProvisionResult {
  sessions: ProvisionedSession[];
  creds: { id: string; creds: AuthenticationCreds; preKeys: Record<string, KeyPair> }[];
}

type FromWorker =
  | { kind: 'progress'; done: number }
  | { kind: 'done'; sessions: ProvisionedSession[]; creds: WorkerProvisionResult['creds'] }
  | { kind: 'error'; message: string };

interface Data {
  env: Record<string, string>;
  adminUrl: string;
  ids: string[];
  insertRows: boolean;
  desired: 'running' | 'stopped';
  wantCreds: boolean;
}

export async function provisionInWorkers(opts: WorkerProvisionOptions): Promise<WorkerProvisionResult> {
  const workers = Math.max(1, Math.min(opts.workers ?? Math.min(os.availableParallelism(), 4), opts.ids.length));
  const per = Math.ceil(opts.ids.length / workers);
  const done = new Array<number>(workers).fill(0);
  const parts = await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const data: Data = {
        env: opts.env,
        adminUrl: opts.adminUrl,
        ids: opts.ids.slice(w * per, (w + 1) * per),
        insertRows: opts.insertRows ?? true,
        desired: opts.desired ?? 'running',
        wantCreds: opts.wantCreds ?? false,
      };
      const worker = new Worker(new URL(import.meta.url), { workerData: data });
      return new Promise<Extract<FromWorker, { kind: 'done' }>>((resolve, reject) => {
        worker.on('message', (m: FromWorker) => {
          if (m.kind === 'progress') {
            done[w] = m.done;
            opts.onProgress?.(done.reduce((a, b) => a + b, 0), opts.ids.length);
          } else if (m.kind === 'done') resolve(m);
          else reject(new Error(`provisioning worker ${w}: ${m.message}`));
        });
        worker.on('error', reject);
        worker.on('exit', (code) => reject(new Error(`provisioning worker ${w} exited ${code} before it was done`)));
      });
    }),
  );
  return { sessions: parts.flatMap((p) => p.sessions), creds: parts.flatMap((p) => p.creds) };
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const data = workerData as Data;
  const logger = createRootLogger({ proc: 'bench', level: 'error' });
  // Not openStores: its local blob store clears `blobs/tmp` at open, under the writes of the other workers (the
  // first 2,500-session run failed ENOENT on a rename). The bench opened (and migrated) the stores before.
  const config = loadConfig(data.env);
  if (config.database === undefined) throw new Error('provisioning workers need DATABASE_URL (PostgreSQL)');
  const sql = await openSql({ url: config.database.url }, logger);
  const blobs = config.s3 === undefined ? await LocalBlobStore.create(path.join(config.dataDir, 'blobs'), { keepTemp: true }) : await S3BlobStore.create(config.s3, { logger });
  const stores = { blobs, sql, close: async () => void (await Promise.all([sql.close(), blobs.close()])) };
  const creds: WorkerProvisionResult['creds'] = [];
  try {
    const sessions = await provisionSessions({
      adminUrl: data.adminUrl,
      blobs: stores.blobs,
      sql: stores.sql,
      logger,
      ids: data.ids,
      insertRows: data.insertRows,
      desired: data.desired,
      onProgress: (d) => port.postMessage({ kind: 'progress', done: d } satisfies FromWorker),
      ...(data.wantCreds ? { onCreds: (id: string, c: AuthenticationCreds, preKeys: Record<string, KeyPair>) => void creds.push({ id, creds: c, preKeys }) } : {}),
    });
    port.postMessage({ kind: 'done', sessions, creds } satisfies FromWorker);
  } catch (err) {
    port.postMessage({ kind: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies FromWorker);
  } finally {
    await stores.close();
  }
}

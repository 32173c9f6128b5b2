/**
 * A scratch PostgreSQL database for a bench (at 127.0.0.1:5432 unless `BENCH_PG_URL` names another admin database),
 * and the CPU its server processes spent.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '@wagw/shared';
import { PostgresDatabase } from '@wagw/stores';
import { procCpuMs } from './proc.ts';

export interface BenchDatabase {
  /** Its URL. */
  url: string;
  /** CPU seconds (user + system) of the PostgreSQL backends serving it now (their /proc entries; USER_HZ 100). */
  backendCpu(): Promise<number>;
  /** Drops it (FORCE: its connections are ended) and closes the admin connection. */
  drop(): Promise<void>;
}

export async function createBenchDatabase(prefix: string, logger: Logger): Promise<BenchDatabase> {
  const adminUrl = process.env['BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = await PostgresDatabase.connect(adminUrl, { logger, poolMax: 1 });
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async backendCpu() {
      const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [name]);
      // A backend that exited counts 0.
      return rows.reduce((total, { pid }) => total + procCpuMs(pid) / 1000, 0);
    },
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await admin.close();
    },
  };
}

import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger, SqlDatabase } from '@wagw/shared';

/** packages/stores/migrations: `NNN_name.sql`, applied in NNN order. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** Key of the transaction-scoped advisory lock that serialises migration runs across processes and hosts. */
export const MIGRATION_LOCK_KEY = 0x77616777; // 'wagw'

const FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE.exec(file);
    if (match === null) throw new Error(`Migration file ${file} must be named NNN_name.sql (lowercase, digits, _)`);
    const sql = await readFile(path.join(dir, file), 'utf8');
    const version = Number(match[1]);
    if (migrations.some((m) => m.version === version)) throw new Error(`Two migrations have version ${match[1]}`);
    migrations.push({ version, name: match[2] ?? '', sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return migrations;
}

export interface MigrateResult {
  /** Versions applied by this run (empty when everything was applied already). */
  applied: number[];
  /** Version of the newest migration now in the database. */
  current: number;
}

/**
 * Applies the pending migrations in one transaction that first takes `pg_advisory_xact_lock`: several
 * routers starting at once queue on the lock, and the ones after the first find nothing to do. A migration
 * that fails rolls the whole run back. An applied migration whose file changed since is refused (write a new
 * one instead). Migrations therefore must be transactional (no CREATE INDEX CONCURRENTLY).
 *
 * PGlite has a single backend and serves one connection, so there the lock is uncontended and the
 * transaction alone gives the same result.
 */
export async function migrate(db: SqlDatabase, options: { logger: Logger; dir?: string }): Promise<MigrateResult> {
  const migrations = await loadMigrations(options.dir);
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer     PRIMARY KEY,
      name       text        NOT NULL,
      checksum   text        NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await tx.query<{ version: number; name: string; checksum: string }>(
      'SELECT version, name, checksum FROM schema_migrations ORDER BY version',
    );
    const done = new Map(rows.map((r) => [r.version, r]));
    const applied: number[] = [];
    for (const m of migrations) {
      const row = done.get(m.version);
      if (row !== undefined) {
        if (row.checksum !== m.checksum) {
          throw new Error(`Migration ${String(m.version).padStart(3, '0')}_${m.name} was changed after it was applied; add a new migration instead`);
        }
        continue;
      }
      try {
        await tx.query(m.sql);
      } catch (err) {
        throw new Error(`Migration ${String(m.version).padStart(3, '0')}_${m.name} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      await tx.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
      applied.push(m.version);
      options.logger.info({ version: m.version, name: m.name, db: db.kind }, 'migration applied');
    }
    const current = Math.max(0, ...migrations.map((m) => m.version), ...rows.map((r) => r.version));
    return { applied, current };
  });
}

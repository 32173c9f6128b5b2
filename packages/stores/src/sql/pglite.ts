import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Logger, SqlDatabase, SqlPoolStats, SqlQueryOptions, SqlResult, SqlTransaction } from '@wagw/shared';
import { GatewayError } from '@wagw/shared';
import { describeFailure } from '../dependency.ts';
import { PostgresDatabase } from './postgres.ts';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: unknown }).code === 'EPERM';
  }
}

/**
 * PGlite does not guard its directory: two processes opening it would corrupt it. A pid file beside the
 * directory (`<dataDir>.lock`) refuses a second live owner; a lock left by a dead process is taken over.
 */
const lockedHere = new Set<string>();

async function lockDataDir(dataDir: string): Promise<string> {
  const lockFile = `${dataDir}.lock`;
  if (lockedHere.has(lockFile)) {
    throw new GatewayError('DEPENDENCY_UNAVAILABLE', `PGlite data directory ${dataDir} is in use by process ${process.pid} (this one)`, {
      dependency: 'PGlite',
      dataDir,
      pid: process.pid,
    });
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lockFile, `${process.pid}\n`, { flag: 'wx' });
      lockedHere.add(lockFile);
      return lockFile;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new GatewayError(
          'DEPENDENCY_UNAVAILABLE',
          `PGlite data directory ${dataDir} is in use by process ${pid} (another gateway with the same DATA_DIR?)`,
          { dependency: 'PGlite', dataDir, pid },
        );
      }
      await rm(lockFile, { force: true }); // stale: its process is gone
    }
  }
  throw new Error(`Could not lock ${dataDir}`);
}

async function unlockDataDir(lockFile: string): Promise<void> {
  lockedHere.delete(lockFile);
  await rm(lockFile, { force: true });
}

export interface EmbeddedPostgresOptions {
  /** Directory of the database files (the factory uses DATA_DIR/pglite). */
  dataDir: string;
  /**
   * 0: a Unix socket in a fresh private directory (0700 directory, 0600 socket), so only this OS user can
   * connect; PGlite has no password check, and a TCP port on 127.0.0.1 let any local process read every message
   * or take the one connection. N: TCP on 127.0.0.1:N, for debugging with psql on a single-user machine.
   */
  port: number;
  logger: Logger;
}

/**
 * PGlite (PostgreSQL compiled to WASM, in this process) persisted under a directory and served over the
 * PostgreSQL wire protocol by pglite-socket on a private Unix socket (or 127.0.0.1:PGLITE_PORT), so the gateway talks to it with pg like to any
 * PostgreSQL.
 *
 * PGlite has ONE backend. pglite-socket queues the messages of all its connections onto it, so two
 * connections share session state (unnamed statements, transactions). The server therefore accepts a
 * single connection (maxConnections 1) and its one client is a pool of one: every statement and
 * transaction of the process is serialised through it. See docs/stores.md for sharing it across processes.
 */
export class EmbeddedPostgres {
  readonly url: string;
  readonly dataDir: string;
  readonly #db: PGlite;
  readonly #server: PGLiteSocketServer;
  readonly #lockFile: string;
  /** The private directory of the Unix socket (removed at stop), or undefined on TCP. */
  readonly socketDir: string | undefined;

  private constructor(db: PGlite, server: PGLiteSocketServer, dataDir: string, lockFile: string, socketDir: string | undefined) {
    this.#db = db;
    this.#server = server;
    this.dataDir = dataDir;
    this.#lockFile = lockFile;
    this.socketDir = socketDir;
    // pg finds a socket as <host>/.s.PGSQL.<port>, the port defaulting to 5432.
    this.url = socketDir === undefined ? `postgres://postgres@${server.getServerConn()}/postgres` : `postgres://postgres@localhost/postgres?host=${encodeURIComponent(socketDir)}`;
  }

  static async start(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
    const dataDir = path.resolve(options.dataDir);
    await mkdir(dataDir, { recursive: true });
    const lockFile = await lockDataDir(dataDir);
    let db: PGlite;
    try {
      db = await PGlite.create(dataDir);
    } catch (err) {
      await unlockDataDir(lockFile);
      throw new GatewayError('DEPENDENCY_UNAVAILABLE', `PGlite could not open its data directory ${dataDir}: ${describeFailure(err)}`, { dependency: 'PGlite', dataDir }, { cause: err });
    }
    // mkdtemp creates the directory 0700: no other user can reach the socket even before its chmod.
    const socketDir = options.port === 0 ? await mkdtemp(path.join(os.tmpdir(), 'wagw-pg-')) : undefined;
    const server =
      socketDir === undefined
        ? new PGLiteSocketServer({ db, host: '127.0.0.1', port: options.port, maxConnections: 1 })
        : new PGLiteSocketServer({ db, path: path.join(socketDir, '.s.PGSQL.5432'), maxConnections: 1 });
    try {
      await server.start();
      if (socketDir !== undefined) await chmod(path.join(socketDir, '.s.PGSQL.5432'), 0o600);
    } catch (err) {
      await server.stop().catch(() => {});
      await db.close().catch(() => {});
      if (socketDir !== undefined) await rm(socketDir, { recursive: true, force: true });
      await unlockDataDir(lockFile);
      throw new GatewayError('DEPENDENCY_UNAVAILABLE', `PGlite could not listen on ${server.getServerConn()}: ${describeFailure(err)}`, { dependency: 'PGlite', port: options.port }, { cause: err });
    }
    if (socketDir === undefined) {
      options.logger.warn({ dataDir, address: server.getServerConn() }, 'embedded PGlite serving on TCP without a password (PGLITE_PORT): any local process can connect');
    } else options.logger.info({ dataDir, address: server.getServerConn() }, 'embedded PGlite serving on a private Unix socket');
    return new EmbeddedPostgres(db, server, dataDir, lockFile, socketDir);
  }

  async stop(): Promise<void> {
    await this.#server.stop();
    await this.#db.close();
    if (this.socketDir !== undefined) await rm(this.socketDir, { recursive: true, force: true });
    await unlockDataDir(this.#lockFile);
  }
}

/**
 * The embedded SqlDatabase: an EmbeddedPostgres plus the one pg connection to it. Same pg code path as
 * PostgresDatabase (it is one inside), so the same SQL and migrations run on both.
 */
export class PgliteDatabase implements SqlDatabase {
  readonly kind = 'pglite' as const;
  readonly server: EmbeddedPostgres;
  readonly #client: PostgresDatabase;

  private constructor(server: EmbeddedPostgres, client: PostgresDatabase) {
    this.server = server;
    this.#client = client;
  }

  static async open(options: EmbeddedPostgresOptions): Promise<PgliteDatabase> {
    const server = await EmbeddedPostgres.start(options);
    try {
      const client = await PostgresDatabase.connect(server.url, { logger: options.logger, kind: 'pglite', applicationName: 'wagw-router' });
      return new PgliteDatabase(server, client);
    } catch (err) {
      await server.stop().catch(() => {});
      throw err;
    }
  }

  /** Address other processes would use (see docs/stores.md before doing so). */
  get url(): string {
    return this.server.url;
  }

  query<R extends Record<string, unknown> = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: SqlQueryOptions): Promise<SqlResult<R>> {
    return this.#client.query<R>(text, params, options);
  }

  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    return this.#client.transaction(fn);
  }

  poolStats(): SqlPoolStats {
    return this.#client.poolStats();
  }

  ping(): Promise<void> {
    return this.#client.ping();
  }

  async close(): Promise<void> {
    await this.#client.close();
    await this.server.stop();
  }
}

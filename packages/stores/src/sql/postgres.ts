import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger, SqlDatabase, SqlPoolStats, SqlQueryOptions, SqlResult, SqlTransaction } from '@wagw/shared';
import { GatewayError } from '@wagw/shared';
import { dependencyUnavailable, describeFailure } from '../dependency.ts';
import type { DependencyName } from '../dependency.ts';

/**
 * Type parsers of every pool (per pool, never pg's global registry): int8 (bigint, bigserial, count(*))
 * becomes a JS number. Values above 2^53 would lose precision; ids and counters here never get there.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === pg.types.builtins.INT8 && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

export interface PostgresOptions {
  logger: Logger;
  /** Connections in the pool (PGlite: always 1). Default 10. */
  poolMax?: number;
  /** Requests that may wait for a connection at once; one more fails at once (DEPENDENCY_UNAVAILABLE). Default 1000. */
  poolMaxWaiting?: number;
  /** Time to open a connection, at start-up and later. Default 3000 ms. */
  connectTimeoutMs?: number;
  /** A query without an answer in this time fails (client side: a partitioned server sends nothing). Default 10000 ms. */
  queryTimeoutMs?: number;
  /** 'pglite' when the URL points at the embedded server (changes only `kind` and error wording). */
  kind?: 'postgres' | 'pglite';
  /** application_name shown in pg_stat_activity. */
  applicationName?: string;
  /**
   * Pipelined connections (pg's `pipeline`): a transaction's BEGIN goes out with its first statement and its `write`s
   * with its COMMIT, instead of a round trip each. Default on for PostgreSQL; always off for PGlite, whose socket
   * server is not relied on to take a second message before it answered the first.
   */
  pipeline?: boolean;
}

type Params = unknown[];

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * A failure of the connection rather than of the SQL (refused, reset, timed out, terminated): the server is
 * unreachable, which callers see as DEPENDENCY_UNAVAILABLE (503), not as a bug (500). An SQL error from the
 * server (pg.DatabaseError) stays as it is.
 */
function isConnectionFailure(err: unknown): boolean {
  if (err instanceof pg.DatabaseError) return isOutOfResources(err) || isServerGone(err);
  return err instanceof Error && (err as { code?: unknown }).code !== 'DEPENDENCY_UNAVAILABLE';
}

/**
 * SQLSTATE class 08 (connection exception) and 57P01-57P03 (admin shutdown, crash shutdown, cannot connect now):
 * the server ended or refused the connection (a restart, pg_terminate_backend), not the SQL.
 */
function isServerGone(err: pg.DatabaseError): boolean {
  return (err.code?.startsWith('08') ?? false) || err.code === '57P01' || err.code === '57P02' || err.code === '57P03';
}

/**
 * SQLSTATE class 53, insufficient resources (53100 disk full, 53200 out of memory, 53300 too many connections):
 * the server cannot take the write now, whatever the SQL. Like an unreachable server it is a 503 the caller
 * may retry, not a 500 (test/faults/disk-full.test.ts: PGlite's data directory on a full disk).
 */
function isOutOfResources(err: pg.DatabaseError): boolean {
  return typeof err.code === 'string' && err.code.startsWith('53');
}

/** pg's query config: a named (prepared) statement when `prepare` and the caller named it. */
function queryConfig(text: string, params: readonly unknown[] | undefined, options: SqlQueryOptions | undefined, prepare: boolean): pg.QueryConfig {
  const values = params === undefined ? undefined : ([...params] as Params);
  return prepare && options?.name !== undefined ? { name: options.name, text, ...(values === undefined ? {} : { values }) } : { text, ...(values === undefined ? {} : { values }) };
}

/** In a transaction that failed, a statement after the failure: its error says nothing of the cause. */
const IN_FAILED_TRANSACTION = '25P02';

/**
 * A transaction's client (`SqlTransaction`), refused once its transaction has ended (a leaked `tx` would run outside
 * it). On a pipelined connection a `write` goes out at once and is not waited for; otherwise the writes run one after
 * another before the next query or the commit. The first write to fail fails the transaction: a later query and the
 * commit reject with its error.
 */
class TransactionClient implements SqlTransaction {
  readonly #client: pg.PoolClient;
  readonly #isOpen: () => boolean;
  readonly #unavailable: (err: unknown) => Error;
  readonly #prepare: boolean;
  readonly #pipelined: boolean;
  /** Pipelined: every write's outcome (never rejects: a failure is kept in `#failed`). */
  readonly #writes: Promise<void>[] = [];
  /** Not pipelined: the writes not yet run, in order (never rejects). */
  #chain: Promise<void> = Promise.resolve();
  #failed: Error | undefined;
  /** Set when the transaction is to be rolled back: a write not yet sent never is. */
  #abandoned = false;

  constructor(client: pg.PoolClient, isOpen: () => boolean, unavailable: (err: unknown) => Error, prepare: boolean, pipelined: boolean) {
    this.#client = client;
    this.#isOpen = isOpen;
    this.#unavailable = unavailable;
    this.#prepare = prepare;
    this.#pipelined = pipelined;
  }

  async query<R extends Record<string, unknown>>(text: string, params?: readonly unknown[], options?: SqlQueryOptions): Promise<SqlResult<R>> {
    this.#assertOpen();
    await this.#chain;
    if (this.#failed !== undefined) throw this.#failed;
    try {
      const result = await this.#send<R>(text, params, options);
      return { rows: result.rows, rowCount: result.rowCount ?? 0 };
    } catch (err) {
      if ((err as { code?: unknown }).code === IN_FAILED_TRANSACTION) await this.#settle();
      throw err;
    }
  }

  write(text: string, params?: readonly unknown[], options?: SqlQueryOptions): void {
    this.#assertOpen();
    const run = async (): Promise<void> => {
      if (this.#failed !== undefined || this.#abandoned) return;
      try {
        await this.#send(text, params, options);
      } catch (err) {
        this.#failed ??= toError(err);
      }
    };
    if (this.#pipelined) this.#writes.push(run());
    else this.#chain = this.#chain.then(run);
  }

  /**
   * COMMIT, after every write (pipelined: sent with them, then their answers checked). A transaction that failed
   * answers its COMMIT with ROLLBACK: that is a failure too, never a commit.
   */
  async commit(): Promise<void> {
    const sent = this.#pipelined ? this.#send('COMMIT') : undefined;
    sent?.catch(() => undefined); // awaited below unless a write failed first
    await this.#settle();
    const result = await (sent ?? this.#send('COMMIT'));
    if (result.command !== 'COMMIT') throw new Error(`COMMIT was answered ${result.command}: the transaction was rolled back`);
  }

  /**
   * Before a ROLLBACK: a write not yet sent never is, and one sent is waited for. Without it, a callback that throws
   * right after a `write` had its ROLLBACK overtake the write (not pipelined, the write waits its turn), and the write
   * then ran on its own, outside the transaction, and was committed.
   */
  async abandon(): Promise<void> {
    this.#abandoned = true;
    await this.#chain;
    await Promise.all(this.#writes);
  }

  /** Waits for every write; rejects with the first failure. */
  async #settle(): Promise<void> {
    await this.#chain;
    await Promise.all(this.#writes);
    if (this.#failed !== undefined) throw this.#failed;
  }

  #assertOpen(): void {
    if (!this.#isOpen()) throw new Error('This transaction has ended; its client cannot be used any more');
  }

  async #send<R extends Record<string, unknown>>(text: string, params?: readonly unknown[], options?: SqlQueryOptions): Promise<pg.QueryResult<R>> {
    try {
      return await this.#client.query<R>(queryConfig(text, params, options, this.#prepare));
    } catch (err) {
      throw isConnectionFailure(err) ? this.#unavailable(err) : err;
    }
  }
}

/**
 * SqlDatabase over a pg Pool: PostgreSQL itself, or the embedded PGlite server (same driver, same SQL).
 * An unreachable server at start-up is DEPENDENCY_UNAVAILABLE naming the URL. Idle-client errors (a server
 * restart) are logged, not thrown into the process.
 */
export class PostgresDatabase implements SqlDatabase {
  readonly kind: 'postgres' | 'pglite';
  readonly #pool: pg.Pool;
  readonly #name: DependencyName;
  /** Set while a transaction callback of this database runs: using `db` there instead of `tx` is a bug. */
  readonly #inTransaction = new AsyncLocalStorage<true>();
  #closed = false;
  readonly #maxWaiting: number;
  readonly #pipelined: boolean;
  #rejected = 0;

  private constructor(pool: pg.Pool, kind: 'postgres' | 'pglite', name: DependencyName, maxWaiting: number, pipelined: boolean) {
    this.#pool = pool;
    this.kind = kind;
    this.#name = name;
    this.#maxWaiting = maxWaiting;
    this.#pipelined = pipelined;
  }

  poolStats(): SqlPoolStats {
    return { total: this.#pool.totalCount, idle: this.#pool.idleCount, waiting: this.#pool.waitingCount, rejected: this.#rejected };
  }

  /** At run time the message names the dependency and the failure, not its URL (it reaches API callers). */
  readonly #unavailable = (err: unknown): Error =>
    err instanceof pg.DatabaseError && isOutOfResources(err)
      ? new GatewayError('DEPENDENCY_UNAVAILABLE', `${this.#name} is out of resources (SQLSTATE ${err.code ?? '53'}: ${err.code === '53100' ? 'disk full' : describeFailure(err)})`, { dependency: this.#name, sqlstate: err.code }, { cause: err })
      : new GatewayError('DEPENDENCY_UNAVAILABLE', `${this.#name} is unreachable: ${describeFailure(err)}`, { dependency: this.#name }, { cause: err });

  static async connect(url: string, options: PostgresOptions): Promise<PostgresDatabase> {
    const kind = options.kind ?? 'postgres';
    const pipelined = kind === 'postgres' && options.pipeline !== false;
    const pool = new pg.Pool({
      pipeline: pipelined,
      connectionString: url,
      max: kind === 'pglite' ? 1 : (options.poolMax ?? 10),
      connectionTimeoutMillis: options.connectTimeoutMs ?? 3000,
      application_name: options.applicationName ?? 'wagw',
      idleTimeoutMillis: kind === 'pglite' ? 0 : 30_000,
      // Client side: a server cut off by a partition answers nothing, and nothing else would end the wait.
      query_timeout: options.queryTimeoutMs ?? 10_000,
      keepAlive: true,
      types,
    });
    const name: DependencyName = kind === 'pglite' ? 'PGlite' : 'PostgreSQL';
    pool.on('error', (err) => {
      options.logger.warn({ err: err.message, dependency: name }, 'idle database connection failed');
    });
    // pg emits 'error' on a checked-out client whose connection ends between two of its queries (a server restart,
    // pg_terminate_backend, a reset by the network); the pool listens only while a client is idle, and an 'error'
    // with no listener ends the process. The next query on it fails and is handled there (DEPENDENCY_UNAVAILABLE).
    pool.on('connect', (client) => {
      client.on('error', (err) => {
        options.logger.warn({ err: err.message, dependency: name }, 'database connection in use failed');
      });
    });
    try {
      await pool.query('SELECT 1');
    } catch (err) {
      await pool.end().catch(() => {});
      throw dependencyUnavailable(name, url, err);
    }
    return new PostgresDatabase(pool, kind, name, options.poolMaxWaiting ?? 1000, pipelined);
  }

  #guard(): void {
    if (this.#closed) throw new Error('The database is closed');
    if (this.#inTransaction.getStore() === true) {
      // With one connection (PGlite) this would wait for itself forever; on PostgreSQL it escapes the transaction.
      throw new Error('Use the transaction client (tx), not the database, inside transaction()');
    }
  }

  /**
   * A connection from the pool. PGlite serves one connection, and the server notices a closed one a tick
   * late: a replacement opened at once may be turned away, so for PGlite a refused connect is retried.
   */
  async #acquire(): Promise<pg.PoolClient> {
    // pg-pool queues every caller without a bound (each gives up after connectionTimeoutMillis only): a slow
    // database with callers that retry faster than it answers grew the queue for minutes in the chaos runs.
    if (this.#pool.waitingCount >= this.#maxWaiting) {
      this.#rejected++;
      throw new GatewayError('DEPENDENCY_UNAVAILABLE', `${this.#name} pool saturated: ${this.#pool.waitingCount} requests already wait for one of its ${this.#pool.totalCount} connections (DATABASE_POOL_MAX_WAITING)`, { dependency: this.#name });
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#pool.connect();
      } catch (err) {
        if (this.kind !== 'pglite' || attempt >= 5 || this.#closed) throw this.#unavailable(err);
        await sleep(20 * attempt);
      }
    }
  }

  async query<R extends Record<string, unknown> = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: SqlQueryOptions): Promise<SqlResult<R>> {
    this.#guard();
    const client = await this.#acquire();
    try {
      const result = await client.query<R>(queryConfig(text, params, options, this.kind === 'postgres'));
      client.release();
      return { rows: result.rows, rowCount: result.rowCount ?? 0 };
    } catch (err) {
      // An SQL error leaves the connection usable (pg.Pool#query would discard it); anything else does not.
      client.release(err instanceof pg.DatabaseError ? undefined : toError(err));
      throw isConnectionFailure(err) ? this.#unavailable(err) : err;
    }
  }

  async transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    this.#guard();
    const client = await this.#acquire();
    let open = true;
    let broken: Error | undefined;
    const tx = new TransactionClient(client, () => open, this.#unavailable, this.kind === 'postgres', this.#pipelined);
    try {
      // Pipelined, BEGIN goes out with the first statement; its failure fails that statement or the commit.
      tx.write('BEGIN');
      const result = await this.#inTransaction.run(true, () => fn(tx));
      await tx.commit();
      return result;
    } catch (err) {
      if ((err as { code?: unknown }).code === 'DEPENDENCY_UNAVAILABLE') {
        // The connection itself failed: a ROLLBACK would only wait out another timeout. Discard it (and what is not sent).
        broken = toError(err);
        void tx.abandon();
      } else {
        try {
          await tx.abandon();
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          broken = toError(rollbackError);
        }
      }
      throw err;
    } finally {
      open = false;
      // A connection whose ROLLBACK failed is discarded rather than handed to the next caller.
      client.release(broken);
    }
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}

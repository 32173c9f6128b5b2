/** The shard's piscina pool for CPU work (QR images now, media processing later). */
import { Piscina } from 'piscina';
import type { CpuPoolStats } from '@wagw/shared';
import { validateQrTask } from './qr.ts';
import type { RenderQrResult, RenderQrTask } from './qr.ts';

export interface CpuPoolOptions {
  threads: number;
  /** Tasks waiting for a thread before `run` fails fast (back-pressure). */
  maxQueue?: number;
  /** Per-task deadline. */
  taskTimeoutMs?: number;
}

const WORKER_FILE = new URL('./cpu-worker.ts', import.meta.url).href;

export class CpuPool {
  readonly #pool: Piscina;
  readonly #taskTimeoutMs: number;
  #closed = false;

  private constructor(pool: Piscina, taskTimeoutMs: number) {
    this.#pool = pool;
    this.#taskTimeoutMs = taskTimeoutMs;
  }

  /** Starts the pool and one thread (so a broken worker file fails the shard's start, not its first QR). */
  static async create(options: CpuPoolOptions): Promise<CpuPool> {
    const pool = new Piscina({
      filename: WORKER_FILE,
      minThreads: 1,
      maxThreads: options.threads,
      maxQueue: options.maxQueue ?? 1000,
      idleTimeout: 30_000,
      // Worker threads inherit nothing from the shard's argv that they need; keep them lean.
      execArgv: [],
    });
    const self = new CpuPool(pool, options.taskTimeoutMs ?? 10_000);
    try {
      await pool.run(null, { name: 'warmUp' });
    } catch (err) {
      await pool.destroy();
      throw err;
    }
    return self;
  }

  async renderQr(task: RenderQrTask): Promise<RenderQrResult> {
    const valid = validateQrTask(task);
    return (await this.#run('renderQr', valid)) as RenderQrResult;
  }

  stats(): CpuPoolStats {
    return {
      threads: this.#pool.threads.length,
      queued: this.#pool.queueSize,
      completed: this.#pool.completed,
      utilization: this.#pool.utilization,
    };
  }

  /** Lets running tasks finish (bounded by the pool's close timeout), then stops the threads. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.close();
  }

  async #run(name: string, task: unknown): Promise<unknown> {
    if (this.#closed) throw new Error('CPU pool is closed');
    return await this.#pool.run(task, { name, signal: AbortSignal.timeout(this.#taskTimeoutMs) });
  }
}

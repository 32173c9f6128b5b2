/**
 * The campaign's clean-up: every step is named after what it stops (the harness registers steps through
 * `after(fn)`; `named(...)` gives that hook a name), steps run last-registered first, each one is traced with its
 * duration, and the whole clean-up has one deadline. A 30-minute run once printed its table and then never
 * exited, its routers still running, for two hours: nothing said which step was waiting. Now a step that does
 * not finish in time is named, and the campaign exits anyway (campaign.ts).
 */
import type { Cleanup } from '../harness/index.ts';

interface Step {
  name: string;
  fn: () => Promise<void>;
}

export type CleanupResult = { ok: true } | { ok: false; step: string; error?: string };

export class CleanupSteps {
  readonly #steps: Step[] = [];

  /** A harness `Cleanup` whose steps carry `name` (e.g. "tcp proxy pg", "router chaos-host-2 #3"). */
  named(name: string): Cleanup {
    return { after: (fn) => void this.#steps.push({ name, fn }) };
  }

  /**
   * Runs every step, last registered first, until all are done or `deadlineMs` passed. `trace` gets two lines per
   * step (its start; its end with the duration); a step that throws is reported and the next one runs. Returns the step still
   * running at the deadline, or the first that failed.
   */
  async run(deadlineMs: number, trace: (line: string, done?: { ms: number; failed: boolean }) => void): Promise<CleanupResult> {
    const steps = this.#steps.splice(0).reverse();
    let current = '(none)';
    let failed: CleanupResult | undefined;
    const all = (async (): Promise<CleanupResult> => {
      for (const s of steps) {
        current = s.name;
        const started = Date.now();
        trace(`cleanup: ${s.name} ...`);
        try {
          await s.fn();
          trace(`cleanup: ${s.name} done in ${Date.now() - started} ms`, { ms: Date.now() - started, failed: false });
        } catch (err) {
          trace(`cleanup: ${s.name} failed after ${Date.now() - started} ms: ${String(err)}`, { ms: Date.now() - started, failed: true });
          failed ??= { ok: false, step: s.name, error: String(err) };
        }
      }
      return failed ?? { ok: true };
    })();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<CleanupResult>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, step: current, error: `did not finish within ${deadlineMs} ms` }), deadlineMs);
    });
    try {
      return await Promise.race([all, expired]);
    } finally {
      clearTimeout(timer);
    }
  }
}

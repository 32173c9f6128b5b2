/**
 * The one exponential backoff of the gateway: attempt 1 waits up to `baseMs`, each attempt doubles the
 * ceiling, capped at `maxMs`. Two jitters, chosen by what the retry guards:
 * - `equal` (default): uniform in [ceiling/2, ceiling]. A session reconnecting or a download retrying never
 *   comes back instantly (WhatsApp answers a reconnect storm with 440/503), yet a fleet still spreads out.
 * - `full`: uniform in [0, ceiling]. Webhook deliveries: many rows retrying against one endpoint spread the
 *   widest, and an early retry costs nothing but one HTTP call.
 */
export type BackoffJitter = 'equal' | 'full';

export interface BackoffOptions {
  jitter?: BackoffJitter;
  /** Source of randomness in [0, 1) (tests pass a fixed one). */
  random?: () => number;
}

export function backoffDelay(attempt: number, baseMs: number, maxMs: number, options: BackoffOptions = {}): number {
  const { jitter = 'equal', random = Math.random } = options;
  // the exponent is clamped so a huge attempt count cannot overflow to Infinity before the cap applies
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 40));
  return jitter === 'full' ? Math.round(random() * ceiling) : Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

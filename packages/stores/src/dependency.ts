import { GatewayError, withTimeout } from '@wagw/shared';

export type DependencyName = 'Redis' | 'PostgreSQL' | 'S3' | 'PGlite' | 'Local storage';

/** A URL without its user name and password, safe for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username !== '' || u.password !== '') {
      u.username = '';
      u.password = '';
    }
    return u.toString().replace(/\/$/, '');
  } catch {
    return '<unparseable URL>';
  }
}

/** The most telling short text of a connection failure: its code (ECONNREFUSED, ETIMEDOUT, ...) or message. */
export function describeFailure(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describeFailure(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
    return err.message.split('\n')[0] ?? err.name;
  }
  return String(err);
}

/**
 * `Redis at redis://host:6379 is unreachable: ECONNREFUSED` (network failures) or `PostgreSQL at ... is
 * unavailable: password authentication failed ...` (the server answered no), with the cause attached.
 */
export function dependencyUnavailable(name: DependencyName, url: string, err: unknown): GatewayError {
  const reason = describeFailure(err);
  const network = /^E[A-Z]+$/.test(reason);
  return new GatewayError(
    'DEPENDENCY_UNAVAILABLE',
    `${name} at ${redactUrl(url)} is ${network ? 'unreachable' : 'unavailable'}: ${reason}`,
    { dependency: name, url: redactUrl(url) },
    { cause: err },
  );
}


/** Measures one health probe. */
export async function probe(kind: string, ping: () => Promise<void>, timeoutMs = 2000): Promise<{ ok: boolean; kind: string; latencyMs: number; error?: string }> {
  const start = performance.now();
  try {
    await withTimeout(ping(), timeoutMs, () => new Error(`no answer within ${timeoutMs} ms`));
    return { ok: true, kind, latencyMs: Math.round((performance.now() - start) * 100) / 100 };
  } catch (err) {
    return { ok: false, kind, latencyMs: Math.round((performance.now() - start) * 100) / 100, error: describeFailure(err) };
  }
}

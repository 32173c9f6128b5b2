/**
 * The logger a session's Baileys socket gets. Baileys logs every `stream:error` at error level, including the
 * 515 "restart required" WhatsApp sends right after every successful pairing (and now and then on a live
 * socket): an expected step, which the disconnect table answers by reconnecting at once. An operator alerting
 * on error lines would be paged for each new customer, so that one line goes to the session's logger at info;
 * every other Baileys line passes through unchanged.
 */
import type { Logger } from '@wagw/shared';

const RESTART_REQUIRED = '515';

function isRestartRequired(obj: unknown, msg: unknown): boolean {
  if (msg !== 'stream errored out' || typeof obj !== 'object' || obj === null) return false;
  const node = (obj as { fullErrorNode?: { attrs?: { code?: unknown } } }).fullErrorNode;
  return String(node?.attrs?.code) === RESTART_REQUIRED;
}

/** `baileys` with its `stream errored out` line for a 515 logged on `session` at info instead (children too). */
export function sessionBaileysLogger(baileys: Logger, session: Logger): Logger {
  // pino's own child() is Object.create(parent) plus bindings: a logger made this way behaves like `baileys`.
  const wrapped = Object.create(baileys) as Logger;
  const error = baileys.error.bind(baileys) as (...args: unknown[]) => void;
  wrapped.error = ((...args: unknown[]) => {
    if (isRestartRequired(args[0], args[1])) {
      session.info({ statusCode: Number(RESTART_REQUIRED) }, 'WhatsApp asked for a socket restart (515 restart required)');
      return;
    }
    error(...args);
  }) as Logger['error'];
  wrapped.child = ((bindings: Record<string, unknown>) => sessionBaileysLogger(baileys.child(bindings), session)) as unknown as Logger['child'];
  return wrapped;
}

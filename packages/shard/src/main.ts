/**
 * Shard process entry (forked by the router's ShardSupervisor). A thin adapter: the protocol lives in
 * handler.ts. The shard exits when its parent disappears (IPC `disconnect`, or a changed `ppid`).
 */
import { createShardHandler } from './handler.ts';

const PARENT_CHECK_INTERVAL_MS = 1000;
const PARENT_GONE_DEADLINE_MS = 5000;

if (typeof process.send !== 'function') {
  process.stderr.write('The shard runs as a child of the router (child_process.fork with an IPC channel).\n');
  process.exit(1);
}

const parentPid = process.ppid;

const handler = createShardHandler({
  // Always with the callback: the outbox (ipc-outbox.ts) counts every write until its callback ran, and holds
  // new messages from the first `false` (pipe backed up) until all of them did; a write without one would
  // keep it holding for ever.
  send: (msg, onSent) => {
    if (!process.connected || process.send === undefined) {
      onSent?.();
      return true;
    }
    return process.send(msg, undefined, undefined, () => onSent?.());
  },
  receive: (listener) => {
    process.on('message', listener);
  },
  exit: (code) => process.exit(code),
});

/** Drains and exits; forced after a deadline so a parentless shard never lingers. */
function stop(reason: string, code: number, deadlineMs: number): void {
  const force = setTimeout(() => process.exit(code), deadlineMs);
  force.unref();
  handler.shutdown(reason, code).catch((err: unknown) => {
    process.stderr.write(`shard shutdown failed: ${String(err)}\n`);
    process.exit(1);
  });
}

process.on('disconnect', () => stop('parent gone', 0, PARENT_GONE_DEADLINE_MS));
const watch = setInterval(() => {
  if (!process.connected || process.ppid !== parentPid) stop('parent gone', 0, PARENT_GONE_DEADLINE_MS);
}, PARENT_CHECK_INTERVAL_MS);
watch.unref();

// The router orchestrates stops: SIGTERM drains like a `shutdown` request; SIGINT (a terminal's Ctrl-C reaches
// the whole process group) is left to the router, which then sends `shutdown`.
process.on('SIGTERM', () => stop('SIGTERM', 0, PARENT_GONE_DEADLINE_MS));
process.on('SIGINT', () => handler.logger?.debug('SIGINT ignored; the router stops the shard'));

function fatal(kind: string, err: unknown): void {
  if (handler.logger) handler.logger.fatal({ err }, kind);
  else process.stderr.write(`${kind}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
process.on('uncaughtException', (err) => fatal('uncaught exception', err));
process.on('unhandledRejection', (err) => fatal('unhandled rejection', err));

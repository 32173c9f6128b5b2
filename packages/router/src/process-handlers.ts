/**
 * Process-level last resorts for the router (issue #10 item 16). A stray rejection (a promise nobody awaited,
 * e.g. a fire-and-forget store write) is logged and the router keeps serving: Node's default would end the
 * process, and every shard and session with it, for one lost background task. An uncaught exception means the
 * process state is unknown: it is logged at fatal and `onFatal` stops the router (which exits).
 */
import type { Logger } from '@wagw/shared';

/** The part of `process` the handlers use (tests pass an EventEmitter). */
export interface ProcessEvents {
  on(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
  on(event: 'uncaughtException', listener: (err: Error) => void): unknown;
}

export function installProcessHandlers(proc: ProcessEvents, logger: Logger, onFatal: (err: Error) => void): void {
  proc.on('unhandledRejection', (reason) => {
    logger.error({ err: reason }, 'unhandled promise rejection; the router keeps running');
  });
  let fatal = false;
  proc.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception; stopping the router');
    if (fatal) return;
    fatal = true;
    onFatal(err);
  });
}

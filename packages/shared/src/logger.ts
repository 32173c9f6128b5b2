import { pino } from 'pino';
import type { Logger, LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Paths redacted from every log line: credentials, keys, tokens and message bodies. */
export const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers["x-api-key"]',
  'apiKey',
  'token',
  'secret',
  'password',
  'creds',
  'keys',
  'text',
  'body.text',
  'message.text',
  '*.password',
  '*.secret',
  '*.token',
  '*.apiKey',
  // Security edge (docs/security.md): credentials anywhere one level down, message bodies and phone numbers.
  '*.authorization',
  '*.headers.authorization',
  '*.headers["x-api-key"]',
  'headers.cookie',
  'req.headers.cookie',
  'metricsToken',
  '*.text',
  'caption',
  '*.caption',
  'phone',
  '*.phone',
  'to',
  '*.to',
  'from',
  '*.from',
  'jid',
  '*.jid',
  'remoteJid',
  '*.remoteJid',
  'participant',
  '*.participant',
];

export interface RootLoggerOptions {
  proc: 'router' | 'shard' | 'wa-sim' | 'test' | 'bench';
  level: string;
  shard?: number;
  pretty?: boolean;
  destination?: NodeJS.WritableStream;
}

/** One root logger per process, tagged `{proc, shard}`; children per request and per session. */
export function createRootLogger(options: RootLoggerOptions): Logger {
  const base: Record<string, unknown> = { proc: options.proc, pid: process.pid };
  if (options.shard !== undefined) base['shard'] = options.shard;
  const config: LoggerOptions = {
    level: options.level,
    base,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination ? pino(config, options.destination as pino.DestinationStream) : pino(config);
}

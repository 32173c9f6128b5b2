import { Writable } from 'node:stream';

/** One captured log line (pino JSON). */
export type LogLine = Record<string, unknown>;

/**
 * A silent, capturing destination for pino loggers in tests: pass `destination` to createRootLogger and read
 * `lines` afterwards. Kept free of @wagw imports so the harness has no workspace dependency.
 */
export function testLogger(): { destination: Writable; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        try {
          lines.push(JSON.parse(line) as LogLine);
        } catch {
          lines.push({ msg: line });
        }
      }
      callback();
    },
  });
  return { destination, lines };
}

/** A small JSON body reader with a byte limit (no dependency): 413 past the limit, 400 INVALID_JSON, 415. */
import { GatewayError } from '@wagw/shared';
import type { IncomingMessage } from 'node:http';

export const DEFAULT_JSON_LIMIT_BYTES = 64 * 1024;

/** Reads the raw body up to `limit` bytes; throws PAYLOAD_TOO_LARGE as soon as it is exceeded. */
export async function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume(); // let the client finish sending; the answer is 413
    throw new GatewayError('PAYLOAD_TOO_LARGE', `The body is ${declared} bytes; the limit is ${limit}.`, { limitBytes: limit });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) {
      req.resume();
      throw new GatewayError('PAYLOAD_TOO_LARGE', `The body exceeds the limit of ${limit} bytes.`, { limitBytes: limit });
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks, size);
}

/**
 * The parsed JSON body, or undefined when there is none. A body must be `application/json` (415 otherwise)
 * and valid JSON (400 INVALID_JSON naming the position).
 */
export async function readJsonBody(req: IncomingMessage, limit = DEFAULT_JSON_LIMIT_BYTES): Promise<unknown> {
  const raw = await readRawBody(req, limit);
  if (raw.length === 0) return undefined;
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type !== 'application/json' && !type.endsWith('+json')) {
    throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', `The body must be application/json (got ${type === '' ? 'no content type' : type}).`);
  }
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch (err) {
    throw new GatewayError('INVALID_JSON', `The body is not valid JSON: ${(err as Error).message}`);
  }
}

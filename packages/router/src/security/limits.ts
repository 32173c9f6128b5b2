/**
 * Request limits the route layer enforces: JSON body size (BODY_LIMIT_BYTES), JSON nesting depth
 * (JSON_MAX_DEPTH, checked on the raw text before JSON.parse so a hostile body never reaches a deep
 * recursion) and multipart upload size (UPLOAD_LIMIT_BYTES). Every refusal is a 4xx GatewayError.
 */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '@wagw/shared';
import type { GatewayConfig } from '@wagw/shared';
import { assertForwardedBody } from './forwarded.ts';
import type { ForwardedCall } from './forwarded.ts';

export interface BodyLimits {
  /** Largest JSON body in bytes. */
  bodyBytes: number;
  /** Deepest nesting of arrays and objects. */
  jsonMaxDepth: number;
  /** Largest multipart request in bytes. */
  uploadBytes: number;
  /** BODY_BUDGET_BYTES: large JSON bodies buffered at once (ByteBudget). */
  bodyBudgetBytes?: number;
}

/**
 * A byte budget for large request bodies in flight (issue #10 item 17): each JSON body over 64 KiB is buffered
 * whole, so without a cap N concurrent 85 MiB base64 sends hold N x 85 MiB. A request takes its Content-Length
 * (BODY_LIMIT_BYTES when chunked) before reading and gives it back when its handler is done; past the budget it is
 * refused at once with 503 BODY_BUDGET_EXHAUSTED and Retry-After (nothing is read, nothing queues). One body is
 * always admitted when nothing else is in flight, so a budget below BODY_LIMIT_BYTES cannot block every large body.
 */
export class ByteBudget {
  readonly total: number;
  #used = 0;
  constructor(total: number) {
    this.total = total;
  }
  get used(): number {
    return this.#used;
  }
  /** Takes `bytes` or throws BODY_BUDGET_EXHAUSTED; call the returned function exactly once to give them back. */
  take(bytes: number): () => void {
    if (this.#used > 0 && this.#used + bytes > this.total) {
      throw new GatewayError('BODY_BUDGET_EXHAUSTED', `Too many large request bodies are being received (${this.#used} of ${this.total} bytes in flight); retry in a second.`, {
        inFlightBytes: this.#used,
        budgetBytes: this.total,
        retryAfterSeconds: 1,
      });
    }
    this.#used += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#used -= bytes;
    };
  }
}

export function bodyLimitsFrom(config: GatewayConfig): BodyLimits {
  return { ...config.limits };
}

function tooDeep(max: number): GatewayError {
  return new GatewayError('BAD_REQUEST', `The JSON body nests deeper than ${max} levels.`, { maxDepth: max });
}

/** Throws BAD_REQUEST when a parsed value nests arrays/objects deeper than `max` (iterative, no recursion). */
export function assertJsonDepth(value: unknown, max: number): void {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > max) throw tooDeep(max);
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
}

/** Throws BAD_REQUEST when JSON text opens more than `max` nested arrays/objects (one pass, strings skipped). */
export function assertJsonTextDepth(text: string, max: number): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) throw tooDeep(max);
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}

/** Throws PAYLOAD_TOO_LARGE at once when Content-Length announces more than `limit` bytes. */
export function assertContentLength(req: IncomingMessage, limit: number, what = 'request body'): void {
  const header = req.headers['content-length'];
  if (header === undefined) return;
  const length = Number(header);
  if (Number.isFinite(length) && length > limit) {
    throw new GatewayError('PAYLOAD_TOO_LARGE', `The ${what} is ${length} bytes; the limit is ${limit}.`, { limitBytes: limit });
  }
}

/** Reads the raw body, refusing it with PAYLOAD_TOO_LARGE as soon as it passes `limit` bytes. */
export function readBodyLimited(req: IncomingMessage, limit: number): Promise<Buffer> {
  assertContentLength(req, limit);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.resume(); // drain what is in flight; the response says why
        reject(new GatewayError('PAYLOAD_TOO_LARGE', `The request body is larger than ${limit} bytes.`, { limitBytes: limit }));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new GatewayError('BAD_REQUEST', 'The request body could not be read.', undefined, { cause: err }));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** The JSON media type check: application/json or any +json type, UTF-8 only, no content encoding. */
export function assertJsonRequest(req: IncomingMessage): void {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  const [mime = '', ...params] = type.split(';').map((s) => s.trim());
  if (mime !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(mime)) {
    throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', 'The body must be application/json.', { contentType: mime.slice(0, 100) });
  }
  const charset = params.find((p) => p.startsWith('charset='))?.slice(8).replace(/"/g, '');
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', 'JSON bodies must be UTF-8.', { charset: charset.slice(0, 40) });
  }
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity') throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', 'Compressed request bodies are not accepted.', { contentEncoding: encoding.slice(0, 40) });
}

/**
 * Reads a JSON request body under the limits: media type (415), size (413), nesting depth and syntax (400).
 * An empty body is `undefined`. The route layer validates the shape (zod) afterwards.
 */
export async function readJsonBody(req: IncomingMessage, limits: Pick<BodyLimits, 'bodyBytes' | 'jsonMaxDepth'>, forwarded?: ForwardedCall): Promise<unknown> {
  const length = req.headers['content-length'];
  if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) {
    assertForwardedBody(forwarded, '');
    return undefined;
  }
  assertJsonRequest(req);
  const raw = await readBodyLimited(req, limits.bodyBytes);
  assertForwardedBody(forwarded, raw);
  if (raw.length === 0) return undefined;
  const text = new TextDecoder('utf-8', { fatal: false }).decode(raw);
  assertJsonTextDepth(text, limits.jsonMaxDepth);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new GatewayError('INVALID_JSON', `The request body is not valid JSON: ${err instanceof Error ? err.message.slice(0, 200) : 'parse error'}.`);
  }
}

/** Limits for busboy (multipart uploads): one file, the upload limit, small fields. */
export function uploadLimits(limits: Pick<BodyLimits, 'uploadBytes'>): { fileSize: number; files: number; fields: number; fieldSize: number; parts: number; headerPairs: number } {
  return { fileSize: limits.uploadBytes, files: 1, fields: 50, fieldSize: 64 * 1024, parts: 52, headerPairs: 50 };
}

/** The error for an upload that passed its limit (busboy's `limit` event on the file stream). */
export function uploadTooLarge(limits: Pick<BodyLimits, 'uploadBytes'>): GatewayError {
  return new GatewayError('PAYLOAD_TOO_LARGE', `The upload is larger than ${limits.uploadBytes} bytes.`, { limitBytes: limits.uploadBytes });
}

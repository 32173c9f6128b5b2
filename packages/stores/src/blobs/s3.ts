import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { Client } from 'minio';
import { withTimeout } from '@wagw/shared';
import type { BlobStore, Logger, S3Config } from '@wagw/shared';
import { dependencyUnavailable } from '../dependency.ts';
import { assertBlobKey, assertBlobPrefix, BlobKeyError, compareKeys } from './keys.ts';

/** Largest body putStream sends as a single PUT (bigger ones go multipart). */
const SINGLE_PUT_MAX = 16 * 1024 * 1024;

function s3Code(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function isNoSuchKey(err: unknown): boolean {
  return s3Code(err) === 'NoSuchKey';
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The minio client has no request timeout: against a partitioned store (connection open, nothing answers) a
 * put would wait forever, and with it every auth write of a session. This transport gives each request an idle
 * limit and destroys it when reached, which frees the socket too (a hung keep-alive socket would otherwise hold
 * one of the agent's slots for good).
 */
function timedTransport(base: typeof http | typeof https, timeoutMs: number): Pick<typeof http, 'request'> {
  const request = (options: http.RequestOptions, callback?: (res: http.IncomingMessage) => void): http.ClientRequest => {
    const req = callback === undefined ? base.request(options) : base.request(options, callback);
    req.setTimeout(timeoutMs, () => {
      req.destroy(Object.assign(new Error(`S3 request: no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    });
    return req;
  };
  return { request: request as typeof http.request };
}

export interface S3BlobStoreOptions {
  logger: Logger;
  /** Limit for the start-up check (connect, bucket exists / create). Default 5000 ms. */
  startupTimeoutMs?: number;
}

/**
 * Blobs in one S3 bucket through the minio client (MinIO, AWS S3, s3rver, ...). The bucket is created at
 * create() when missing. get/getStream return null only on NoSuchKey; every other failure throws, so a
 * caller can never mistake an outage for "no credentials yet".
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3' as const;
  readonly bucket: string;
  readonly #client: Client;
  readonly #agent: http.Agent;

  private constructor(client: Client, bucket: string, agent: http.Agent) {
    this.#client = client;
    this.bucket = bucket;
    this.#agent = agent;
  }

  static async create(config: S3Config, options: S3BlobStoreOptions): Promise<S3BlobStore> {
    const url = new URL(config.endpoint);
    const useSSL = url.protocol === 'https:';
    const agent = useSSL ? new https.Agent({ keepAlive: true, maxSockets: 64 }) : new http.Agent({ keepAlive: true, maxSockets: 64 });
    const client = new Client({
      endPoint: url.hostname,
      port: url.port === '' ? (useSSL ? 443 : 80) : Number(url.port),
      useSSL,
      accessKey: config.accessKey,
      secretKey: config.secretKey,
      region: config.region,
      pathStyle: config.pathStyle,
      transportAgent: agent,
      transport: timedTransport(useSSL ? https : http, config.requestTimeoutMs ?? 10_000) as typeof http,
    });
    const store = new S3BlobStore(client, config.bucket, agent);
    const timeoutMs = options.startupTimeoutMs ?? 5000;
    try {
      await withTimeout(store.#ensureBucket(config.region, options.logger), timeoutMs, () =>
        Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }),
      );
    } catch (err) {
      agent.destroy();
      throw dependencyUnavailable('S3', config.endpoint, err);
    }
    return store;
  }

  async #ensureBucket(region: string, logger: Logger): Promise<void> {
    if (await this.#client.bucketExists(this.bucket)) return;
    try {
      await this.#client.makeBucket(this.bucket, region);
      logger.info({ bucket: this.bucket }, 's3 bucket created');
    } catch (err) {
      // Another router created it at the same moment.
      const code = s3Code(err);
      if (code !== 'BucketAlreadyOwnedByYou' && code !== 'BucketAlreadyExists') throw err;
    }
  }

  async put(key: string, data: Uint8Array, contentType = 'application/octet-stream'): Promise<void> {
    assertBlobKey(key);
    const body = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    await this.#client.putObject(this.bucket, key, body, body.length, { 'Content-Type': contentType });
  }

  async putStream(key: string, body: Readable, contentType = 'application/octet-stream'): Promise<number> {
    assertBlobKey(key);
    // Bodies up to SINGLE_PUT_MAX are buffered and sent as one PUT with a known length (what most media
    // is, and all s3rver supports). Longer ones continue as a multipart upload of unknown length.
    const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const head: Buffer[] = [];
    let bytes = 0;
    let done = false;
    while (bytes <= SINGLE_PUT_MAX) {
      const next = await iterator.next();
      if (next.done === true) {
        done = true;
        break;
      }
      const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
      head.push(chunk);
      bytes += chunk.length;
    }
    if (done) {
      const buffer = Buffer.concat(head);
      await this.#client.putObject(this.bucket, key, buffer, buffer.length, { 'Content-Type': contentType });
      return bytes;
    }
    async function* rest(): AsyncGenerator<Buffer> {
      yield* head;
      for (;;) {
        const next = await iterator.next();
        if (next.done === true) return;
        const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
        bytes += chunk.length;
        yield chunk;
      }
    }
    await this.#client.putObject(this.bucket, key, Readable.from(rest()), undefined, { 'Content-Type': contentType });
    return bytes;
  }

  async get(key: string): Promise<Buffer | null> {
    const stream = await this.getStream(key);
    return stream === null ? null : collect(stream);
  }

  async getStream(key: string): Promise<Readable | null> {
    assertBlobKey(key);
    try {
      return await this.#client.getObject(this.bucket, key);
    } catch (err) {
      if (isNoSuchKey(err)) return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    assertBlobPrefix(prefix);
    const keys: string[] = [];
    const stream = this.#client.listObjectsV2(this.bucket, prefix, true);
    for await (const item of stream as AsyncIterable<{ name?: string }>) {
      if (typeof item.name === 'string') keys.push(item.name);
    }
    return keys.sort(compareKeys);
  }

  async listModified(prefix: string): Promise<{ key: string; modifiedAt: number }[]> {
    assertBlobPrefix(prefix);
    const out: { key: string; modifiedAt: number }[] = [];
    const stream = this.#client.listObjectsV2(this.bucket, prefix, true);
    for await (const item of stream as AsyncIterable<{ name?: string; lastModified?: Date }>) {
      if (typeof item.name === 'string') out.push({ key: item.name, modifiedAt: item.lastModified?.getTime() ?? 0 });
    }
    return out.sort((x, y) => compareKeys(x.key, y.key));
  }

  async delete(key: string): Promise<void> {
    assertBlobKey(key);
    await this.#client.removeObject(this.bucket, key);
  }

  async deletePrefix(prefix: string): Promise<number> {
    if (prefix === '') throw new BlobKeyError('prefix', prefix, 'deletePrefix needs a non-empty prefix');
    const keys = await this.list(prefix);
    // One DELETE per key, in order. Multi-object delete (removeObjects) would be fewer requests on real S3,
    // but s3rver races itself on it (500 on concurrent rmdir) and this runs only on logout/delete.
    for (const key of keys) await this.#client.removeObject(this.bucket, key);
    return keys.length;
  }

  async ping(): Promise<void> {
    if (!(await this.#client.bucketExists(this.bucket))) throw new Error(`bucket ${this.bucket} does not exist`);
  }

  async close(): Promise<void> {
    this.#agent.destroy();
  }
}

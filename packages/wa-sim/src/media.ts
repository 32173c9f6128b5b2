// Media endpoint: an HTTPS server (Baileys hard-codes `https://{host}/mms/...` for uploads) that stores
// encrypted uploads and serves them back at their direct path. Also used in-process by simulated phones.
import { createDecipheriv, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { getMediaKeys } from '@whiskeysockets/baileys';
import type { MediaType, proto, WAMediaUploadFunction } from '@whiskeysockets/baileys';
import type { Logger } from 'pino';
import type { Stats } from './stats.ts';
import type { SelfSignedCert } from './tls-cert.ts';

const MEDIA_MESSAGE_KEYS: ReadonlyArray<[keyof proto.IMessage, MediaType]> = [
  ['imageMessage', 'image'],
  ['videoMessage', 'video'],
  ['audioMessage', 'audio'],
  ['documentMessage', 'document'],
  ['stickerMessage', 'sticker'],
];

export class MediaStore {
  /** `host:port` clients put in media URLs (answered in `media_conn`). */
  hostPort = '';
  readonly auth = randomBytes(24).toString('base64url');
  private readonly blobs = new Map<string, Buffer>();
  private totalBytes = 0;
  private server: Server | undefined;
  private readonly maxBytes: number;
  private readonly stats: Stats;
  private readonly logger: Logger;

  constructor(stats: Stats, logger: Logger, maxBytes = 1 << 30) {
    this.stats = stats;
    this.logger = logger;
    this.maxBytes = maxBytes;
  }

  async listen(host: string, port: number, cert: SelfSignedCert): Promise<number> {
    const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
      this.handle(req, res).catch(err => {
        this.logger.warn({ err }, 'media request failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const addr = server.address();
    const bound = typeof addr === 'object' && addr ? addr.port : port;
    this.hostPort = `${host.includes(':') ? `[${host}]` : host}:${bound}`;
    return bound;
  }

  /** Stores an encrypted blob; returns its direct path. */
  put(data: Buffer, mediaPath = '/mms/media'): string {
    const kind = mediaPath.split('/')[2] ?? 'media';
    const directPath = `/v/t62.${kind}/${randomBytes(16).toString('hex')}.enc`;
    this.blobs.set(directPath, data);
    this.totalBytes += data.length;
    while (this.totalBytes > this.maxBytes) {
      const first = this.blobs.entries().next();
      if (first.done) break;
      this.blobs.delete(first.value[0]);
      this.totalBytes -= first.value[1].length;
    }
    this.stats.mediaUploads++;
    return directPath;
  }

  get(directPath: string): Buffer | undefined {
    return this.blobs.get(directPath.split('?')[0] ?? directPath);
  }

  /** Upload function with the shape Baileys' message generators expect (used by simulated phones). */
  readonly upload: WAMediaUploadFunction = async (filePath, { mediaType }) => {
    const data = await readFile(filePath);
    const directPath = this.put(data, `/mms/${mediaType}`);
    return { mediaUrl: `https://${this.hostPort}${directPath}`, directPath };
  };

  /** Fetches and decrypts the media of a message (AES-256-CBC, 10-byte MAC suffix). */
  async decryptFromMessage(message: proto.IMessage): Promise<Buffer> {
    for (const [key, type] of MEDIA_MESSAGE_KEYS) {
      const m = message[key] as { directPath?: string | null; url?: string | null; mediaKey?: Uint8Array | null } | null | undefined;
      if (!m) continue;
      const path = m.directPath ?? (m.url ? new URL(m.url).pathname : undefined);
      const enc = path ? this.get(path) : undefined;
      if (!enc || !m.mediaKey) throw new Error('media not found in the simulator store');
      const { cipherKey, iv } = await getMediaKeys(m.mediaKey, type);
      const d = createDecipheriv('aes-256-cbc', cipherKey, iv);
      return Buffer.concat([d.update(enc.subarray(0, enc.length - 10)), d.final()]);
    }
    throw new Error('not a media message');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://media.local');
    if (req.method === 'POST' && url.pathname.startsWith('/mms/')) {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const directPath = this.put(Buffer.concat(chunks), url.pathname);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ url: `https://${this.hostPort}${directPath}`, direct_path: directPath }));
      return;
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      const blob = this.get(url.pathname);
      if (!blob) {
        res.writeHead(404);
        res.end();
        return;
      }
      this.stats.mediaDownloads++;
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (range) {
        const start = Number(range[1]);
        const end = range[2] ? Math.min(Number(range[2]), blob.length - 1) : blob.length - 1;
        res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${blob.length}`, 'content-length': end - start + 1 });
        res.end(req.method === 'HEAD' ? undefined : blob.subarray(start, end + 1));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
      res.end(req.method === 'HEAD' ? undefined : blob);
      return;
    }
    res.writeHead(405);
    res.end();
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>(resolve => s.close(() => resolve()));
  }
}

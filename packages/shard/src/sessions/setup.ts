/**
 * Builds a shard's SessionHost from the `init` handshake: opens the blob store the router uses, points Baileys
 * at WhatsApp (or the simulator: WebSocket URL, root key of the Noise certificate chain, extra CA for media).
 */
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { WA_CERT_DETAILS } from '@whiskeysockets/baileys';
import type { WAVersion } from '@whiskeysockets/baileys';
import { LocalBlobStore, S3BlobStore } from '@wagw/stores';
import type { BlobStore, Logger, ShardEvent, ShardInitConfig, ShardSessionsConfig } from '@wagw/shared';
import type { ShardRequester } from '../messaging/inbound.ts';
import { Gate } from './gate.ts';
import { SessionHost } from './host.ts';

/**
 * How long after a failed login or a socket the server dropped the shard's logins stay spaced at
 * SESSION_LOGIN_RATE_PER_SECOND. Longer than the reconnect backoff's first steps, so a server that refuses for a
 * while sees every retry spaced, and the first logins after it came back too.
 */
const LOGIN_TROUBLE_WINDOW_MS = 30_000;

export interface SessionHostHandle {
  host: SessionHost;
  close(): Promise<void>;
}

export async function openBlobsForShard(config: ShardSessionsConfig, logger: Logger): Promise<BlobStore> {
  return config.blobs.kind === 'local'
    ? await LocalBlobStore.create(config.blobs.dir, { keepTemp: true })
    : await S3BlobStore.create(config.blobs.s3, { logger });
}

/** Applies the process-wide WhatsApp settings (root key, extra CA). Simulator settings are logged loudly. */
export async function configureWhatsApp(config: ShardSessionsConfig, logger: Logger): Promise<void> {
  const { wa } = config;
  if (wa.rootPublicKey !== undefined) {
    // Baileys exports this object mutable; it is the root its Noise handshake verifies the server against.
    WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(wa.rootPublicKey, 'base64');
    logger.warn({ url: wa.websocketUrl }, 'WhatsApp root key replaced (simulator mode)');
  }
  if (wa.extraCaFile !== undefined) {
    const pem = await readFile(wa.extraCaFile, 'utf8');
    tls.setDefaultCACertificates([...tls.getCACertificates('default'), pem]);
    logger.info({ file: wa.extraCaFile }, 'extra CA certificate trusted');
  }
}

export async function createSessionHost(
  init: { shardIndex: number; config: ShardInitConfig },
  sessions: ShardSessionsConfig,
  logger: Logger,
  emit: (event: ShardEvent) => void,
  request: ShardRequester,
): Promise<SessionHostHandle> {
  await configureWhatsApp(sessions, logger);
  const blobs = await openBlobsForShard(sessions, logger);
  // Baileys gets its own child at warn (or quieter when the root is quieter).
  const baileysLogger = logger.child({ component: 'baileys' }, { level: logger.levelVal > 40 ? logger.level : 'warn' });
  const host = new SessionHost({
    blobs,
    logger,
    baileysLogger,
    wa: {
      url: sessions.wa.websocketUrl,
      ...(sessions.wa.version === undefined ? {} : { version: sessions.wa.version as WAVersion }),
    },
    gate: new Gate(sessions.loginConcurrency, sessions.loginRatePerSecond ?? Infinity, Date.now, { troubleWindowMs: LOGIN_TROUBLE_WINDOW_MS }),
    reconnect: sessions.reconnect,
    keyWriteBehind: sessions.keyWriteBehind,
    emit,
    maxSessions: init.config.maxSessions,
    messaging: sessions.messaging,
    request,
    // The simulator's media host is trusted only in simulator mode (config.ts also refuses it without the key).
    ...(sessions.wa.rootPublicKey !== undefined && sessions.wa.mediaHost !== undefined ? { mediaSimulatorHost: sessions.wa.mediaHost } : {}),
  });
  return {
    host,
    async close() {
      await blobs.close();
    },
  };
}

/**
 * Session contracts shared by the router and the shards: what a shard needs to run sessions, what it reports
 * about them, and the session IPC messages' parameter and result shapes (wired into ipc.ts).
 */
import type { MessagingConfig, S3Config, WaConfig } from './config.ts';
import type { SessionState } from './session-state.ts';

/** The linked WhatsApp account of a session. */
export interface SessionMe {
  /** E.164 with a leading +. */
  phone: string;
  /** The account's phone-number JID (no device part). */
  jid: string;
  lid?: string;
  name?: string;
}

/** Where the shard's blob store lives (the same one the router opened). */
export type ShardBlobConfig = { kind: 'local'; dir: string } | { kind: 's3'; s3: S3Config };

/** Everything a shard needs to run sessions; part of the `init` handshake. */
export interface ShardSessionsConfig {
  blobs: ShardBlobConfig;
  wa: WaConfig;
  /** Logins/pairings at once in this shard. */
  loginConcurrency: number;
  /** Logins/pairings this shard starts per second at most (absent: unlimited). */
  loginRatePerSecond?: number;
  reconnect: { baseMs: number; maxMs: number; maxAttempts: number };
  /** SESSION_KEY_WRITE_BEHIND: ratchet-only key writes are not awaited. */
  keyWriteBehind: boolean;
  /** Send governor and media limits (docs/messaging.md). The defaults live only in config.ts. */
  messaging: MessagingConfig;
}

/** A session as its shard sees it. */
export interface ShardSessionInfo {
  sessionId: string;
  epoch: number;
  status: SessionState;
  me?: SessionMe;
  /** Epoch ms until which the lease is known valid (the shard aborts the socket at this instant). */
  validUntil: number;
}

/** A lease the router holds for a session on this shard, valid until `validUntil` (epoch ms). */
export interface LeaseGrant {
  sessionId: string;
  epoch: number;
  validUntil: number;
}

export interface SessionStartParams extends LeaseGrant {
  /** Why (create, recover, migrate, restart, restore): logged. */
  reason: string;
}

export interface SessionStopParams {
  sessionId: string;
  reason: string;
}

export interface SessionPairingCodeParams {
  sessionId: string;
  /** Digits with country code, no +. */
  phone: string;
}

export interface LeasesExtendParams {
  leases: LeaseGrant[];
}

export interface QrRenderParams {
  text: string;
  format: 'png' | 'svg' | 'utf8';
  width?: number;
  margin?: number;
}

export interface QrRenderResult {
  contentType: string;
  /** base64 for png, text otherwise. */
  encoding: 'base64' | 'utf8';
  data: string;
}

/** Session events a shard emits (part of ShardEventMap). */
export interface SessionStatusEvent {
  sessionId: string;
  epoch: number;
  /** Per runner, increasing: one fact = one (sessionId, epoch, seq). */
  seq: number;
  status: SessionState;
  reason?: string;
  me?: SessionMe;
  /** ISO time. */
  at: string;
}

export interface SessionQrEvent {
  sessionId: string;
  epoch: number;
  qr: string;
  ttlMs: number;
  /** 0 for the first QR of a login attempt. */
  index: number;
  at: string;
}


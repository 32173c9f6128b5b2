/**
 * API keys: configured only as SHA-256 hashes (AUTH_API_KEYS / AUTH_API_KEYS_FILE). A presented key is
 * hashed and compared with every configured hash in constant time; the plain key is never stored or logged.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKeyConfig } from '@wagw/shared';
import type { Principal } from './principal.ts';

/** The SHA-256 of an API key as lowercase hex: what AUTH_API_KEYS holds. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A fresh random API key (32 bytes, base64url) and the hash to configure. */
export function generateApiKey(prefix = 'wagw_'): { key: string; sha256: string } {
  const key = prefix + randomBytes(32).toString('base64url');
  return { key, sha256: hashApiKey(key) };
}

/** Compares two equal-length buffers in constant time (exported so tests can prove it is the one used). */
export const constantTimeEqual = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);

export class ApiKeyStore {
  readonly #keys: { config: ApiKeyConfig; digest: Buffer }[];
  readonly #compare: (a: Buffer, b: Buffer) => boolean;

  constructor(keys: readonly ApiKeyConfig[], compare: (a: Buffer, b: Buffer) => boolean = constantTimeEqual) {
    this.#keys = keys.map((config) => ({ config, digest: Buffer.from(config.sha256, 'hex') }));
    this.#compare = compare;
  }

  get size(): number {
    return this.#keys.length;
  }

  /** The principal of a presented key, or undefined. Every configured hash is compared (no early exit). */
  lookup(presented: string): Principal | undefined {
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    let found: ApiKeyConfig | undefined;
    for (const k of this.#keys) {
      if (this.#compare(digest, k.digest) && found === undefined) found = k.config;
    }
    if (found === undefined) return undefined;
    return { kind: 'api-key', subject: found.name, scopes: found.scopes, sessions: found.sessions };
  }
}

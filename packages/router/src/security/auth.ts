/**
 * Inbound authentication: `Authorization: Bearer <JWT>` (jose; HS256 secret or a remote JWKS, issuer,
 * audience and algorithms pinned, expiry enforced with a small clock skew) or `X-Api-Key` (SHA-256 hashes,
 * constant-time compare). Without any credential source the gateway is anonymous only in tests and in
 * development on a loopback HOST; anywhere else it refuses to start unless AUTH_DISABLED=true. Design and wiring: docs/security.md.
 */
import { createHash } from 'node:crypto';
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose';
import type { FetchImplementation, JWTPayload } from 'jose';
import type { Middleware, ParameterizedContext } from 'koa';
import { ConfigError, GatewayError } from '@wagw/shared';
import type { AuthConfig, AuthScope, ErrorCode, GatewayConfig, Logger } from '@wagw/shared';
import { ApiKeyStore } from './api-keys.ts';
import { constantTimeEqual } from './api-keys.ts';
import { ANONYMOUS, assertScopes, assertSessionAllowed, hasScope, isScope } from './principal.ts';
import type { Principal, SecurityState } from './principal.ts';

/**
 * Paths that never need credentials (`/metrics` needs METRICS_TOKEN when that is set). The console's and the
 * docs' files are static and hold no data: every API call they make carries the user's own credential.
 */
export const PUBLIC_PATHS: readonly string[] = ['/health', '/ready', '/metrics', '/openapi.json', '/docs', '/console'];

export function isPublicPath(path: string): boolean {
  return PUBLIC_PATHS.includes(path) || path.startsWith('/docs/') || path.startsWith('/console/');
}

/** Longest bearer token or API key looked at; longer ones are refused without any crypto. */
const MAX_CREDENTIAL_LENGTH = 8192;
const REALM = 'wagw';

export type AuthMode = 'jwt-secret' | 'jwks' | 'api-keys' | 'jwt-secret+api-keys' | 'jwks+api-keys' | 'anonymous' | 'disabled';

export interface AuthenticatorOptions {
  logger: Logger;
  /** fetch used for the JWKS (tests; defaults to the global fetch). */
  fetch?: FetchImplementation;
  /** Compare used for API key hashes (tests prove the constant-time one is the default). */
  compare?: (a: Buffer, b: Buffer) => boolean;
}

export interface RequireAuthOptions {
  /** Every one of these is required (`admin` implies all). Empty: any authenticated caller. */
  scopes: readonly AuthScope[];
  /** Route parameter holding a session id; a token limited to other sessions gets 403 SESSION_NOT_ALLOWED. */
  sessionParam?: string;
}

type Ctx = ParameterizedContext<SecurityState>;

/** A 401/403 with its RFC 6750 challenge; the challenge goes on the response before the error is thrown. */
function refuse(ctx: Ctx, code: ErrorCode, message: string, challenge: string | undefined, details?: Record<string, unknown>): never {
  const params = [`realm="${REALM}"`];
  if (challenge !== undefined) params.push(`error="${challenge}"`, `error_description="${message.replace(/["\\]/g, "'")}"`);
  ctx.set('WWW-Authenticate', `Bearer ${params.join(', ')}`);
  throw new GatewayError(code, message, details);
}

function describeMode(auth: AuthConfig, keys: number): AuthMode {
  if (auth.disabled) return 'disabled';
  const jwt = auth.jwt === undefined ? undefined : auth.jwt.kind === 'secret' ? 'jwt-secret' : 'jwks';
  if (jwt !== undefined && keys > 0) return `${jwt}+api-keys`;
  return jwt ?? (keys > 0 ? 'api-keys' : 'anonymous');
}

/** The scopes of a token: `scope` (space separated, RFC 8693) and/or `scopes` (array); unknown ones ignored. */
export function scopesFromClaims(payload: JWTPayload): AuthScope[] {
  const out = new Set<AuthScope>();
  const { scope, scopes } = payload as { scope?: unknown; scopes?: unknown };
  if (typeof scope === 'string') for (const s of scope.split(' ')) if (isScope(s)) out.add(s);
  if (Array.isArray(scopes)) for (const s of scopes) if (isScope(s)) out.add(s);
  return [...out];
}

/** Whether HOST binds to loopback only (127.0.0.0/8, ::1, localhost), so no other machine reaches the router. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(?:\.\d{1,3}){3}$/.test(h) || /^::ffff:127(?:\.\d{1,3}){3}$/.test(h);
}

/**
 * Why anonymous mode (no credential source, AUTH_DISABLED unset) may not start here, or undefined when it may:
 * only in tests, or in development on a loopback HOST that no proxy forwards to (a wildcard or LAN address,
 * or TRUST_PROXY, means other machines reach it). Production always needs credentials.
 */
function anonymousRefusal(config: GatewayConfig): string | undefined {
  if (config.nodeEnv === 'test') return undefined;
  if (config.nodeEnv === 'production') return 'NODE_ENV=production';
  if (!isLoopbackHost(config.http.host)) return `HOST=${config.http.host} (not a loopback address)`;
  if (config.http.trustProxy) return 'TRUST_PROXY=true (a proxy forwards other machines\' calls)';
  return undefined;
}

export class Authenticator {
  readonly mode: AuthMode;
  readonly #config: AuthConfig;
  readonly #log: Logger;
  readonly #keys: ApiKeyStore;
  readonly #verifyKey: Uint8Array | ReturnType<typeof createRemoteJWKSet> | undefined;
  readonly #metricsDigest: Buffer | undefined;

  constructor(config: GatewayConfig, options: AuthenticatorOptions) {
    const auth = config.auth;
    this.#config = auth;
    this.#log = options.logger;
    this.#keys = new ApiKeyStore(auth.apiKeys, options.compare);
    this.mode = describeMode(auth, this.#keys.size);
    const refusal = this.mode === 'anonymous' ? anonymousRefusal(config) : undefined;
    if (refusal !== undefined) {
      throw new ConfigError([
        `AUTH_JWT_SECRET, AUTH_JWKS_URL, AUTH_API_KEYS, AUTH_API_KEYS_FILE: ${refusal} needs at least one credential source (every caller would be an anonymous admin); set AUTH_DISABLED=true to run without authentication on purpose`,
      ]);
    }
    if (auth.jwt?.kind === 'secret') this.#verifyKey = new TextEncoder().encode(auth.jwt.secret);
    else if (auth.jwt?.kind === 'jwks') {
      this.#verifyKey = createRemoteJWKSet(new URL(auth.jwt.url), {
        cooldownDuration: auth.jwt.cooldownMs,
        timeoutDuration: auth.jwt.timeoutMs,
        cacheMaxAge: 10 * 60_000,
        ...(options.fetch ? { [customFetch]: options.fetch } : {}),
      });
    }
    this.#metricsDigest = auth.metricsToken === undefined ? undefined : createHash('sha256').update(auth.metricsToken).digest();
  }

  /** Logs how callers are authenticated; a warning when nobody is (never the secrets). */
  logStartup(): void {
    const fields = {
      mode: this.mode,
      issuer: this.#config.issuer,
      audience: this.#config.audience,
      algorithms: this.#config.jwt?.algorithms,
      jwksUrl: this.#config.jwt?.kind === 'jwks' ? this.#config.jwt.url : undefined,
      apiKeys: this.#keys.size,
      metricsProtected: this.#metricsDigest !== undefined,
    };
    if (this.mode === 'disabled') this.#log.warn(fields, 'authentication disabled by AUTH_DISABLED=true: every caller is an anonymous admin');
    else if (this.mode === 'anonymous') {
      this.#log.warn(fields, 'no authentication configured: every caller is an anonymous admin (allowed only on a loopback HOST or with NODE_ENV=test)');
    } else this.#log.info(fields, 'authentication configured');
  }

  /**
   * App-level middleware: public paths pass (with METRICS_TOKEN checked on /metrics); everything else needs
   * valid credentials, which become `ctx.state.principal` and a field of `ctx.state.log`. Put it after the
   * error middleware and the per-IP limiter, before the routes.
   */
  authenticate(): Middleware<SecurityState> {
    return async (ctx, next) => {
      if (isPublicPath(ctx.path)) {
        if (ctx.path === '/metrics') this.checkMetricsToken(ctx);
        return next();
      }
      await this.#attach(ctx);
      return next();
    };
  }

  /** Route middleware: authenticates when `authenticate()` has not, then checks scopes and the session id. */
  requireAuth(options: RequireAuthOptions): Middleware<SecurityState> {
    const scopes = [...options.scopes];
    const sessionParam = options.sessionParam;
    return async (ctx, next) => {
      const principal = ctx.state.principal ?? (await this.#attach(ctx));
      try {
        assertScopes(principal, scopes);
      } catch (err) {
        if (principal.kind === 'jwt') ctx.set('WWW-Authenticate', `Bearer realm="${REALM}", error="insufficient_scope", scope="${scopes.join(' ')}"`);
        throw err;
      }
      if (sessionParam !== undefined) {
        const id = (ctx as { params?: Record<string, unknown> }).params?.[sessionParam];
        if (typeof id === 'string') assertSessionAllowed(principal, id);
      }
      await next();
    };
  }

  /** The principal of a request's headers, or a thrown 401 GatewayError (challenge set on `ctx`). */
  async #attach(ctx: Ctx): Promise<Principal> {
    const principal = await this.#resolve(ctx);
    ctx.state.principal = principal;
    const fields = { principal: { kind: principal.kind, subject: principal.subject } };
    if (ctx.state.bindLog !== undefined) ctx.state.bindLog(fields);
    else ctx.state.log = ctx.state.log.child(fields);
    return principal;
  }

  async #resolve(ctx: Ctx): Promise<Principal> {
    if (this.mode === 'anonymous' || this.mode === 'disabled') return ANONYMOUS;
    const authorization = ctx.get('authorization');
    const apiKey = ctx.get('x-api-key');
    if (authorization !== '' && apiKey !== '') {
      refuse(ctx, 'UNAUTHORIZED', 'Send either Authorization or X-Api-Key, not both.', 'invalid_request');
    }
    if (apiKey !== '') return this.#apiKey(ctx, apiKey);
    if (authorization === '') {
      const how = [this.#verifyKey !== undefined ? 'Authorization: Bearer <token>' : '', this.#keys.size > 0 ? 'X-Api-Key' : ''].filter(Boolean);
      refuse(ctx, 'UNAUTHORIZED', `Authentication is required: send ${how.join(' or ')}.`, undefined);
    }
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    if (match === null) refuse(ctx, 'UNAUTHORIZED', 'The Authorization header must be "Bearer <token>".', 'invalid_request');
    return this.#jwt(ctx, match[1] ?? '');
  }

  #apiKey(ctx: Ctx, presented: string): Principal {
    if (this.#keys.size === 0) refuse(ctx, 'INVALID_API_KEY', 'API keys are not enabled on this gateway.', 'invalid_token');
    const principal = presented.length <= MAX_CREDENTIAL_LENGTH ? this.#keys.lookup(presented) : undefined;
    if (principal === undefined) refuse(ctx, 'INVALID_API_KEY', 'The API key is not valid.', 'invalid_token');
    return principal;
  }

  async #jwt(ctx: Ctx, token: string): Promise<Principal> {
    const key = this.#verifyKey;
    const cfg = this.#config;
    if (key === undefined || cfg.jwt === undefined) refuse(ctx, 'INVALID_TOKEN', 'Bearer tokens are not enabled on this gateway; use X-Api-Key.', 'invalid_token');
    if (token.length > MAX_CREDENTIAL_LENGTH) refuse(ctx, 'INVALID_TOKEN', 'The token is too long.', 'invalid_token');
    let payload: JWTPayload;
    try {
      const options = {
        algorithms: cfg.jwt.algorithms,
        issuer: cfg.issuer,
        audience: cfg.audience,
        clockTolerance: cfg.clockSkewMs / 1000,
        requiredClaims: ['exp', 'sub'],
      };
      // Two calls rather than a union argument: jwtVerify's overloads take a key or a key-resolving function.
      ({ payload } = key instanceof Uint8Array ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options));
    } catch (err) {
      return this.#jwtFailure(ctx, err);
    }
    const sub = payload.sub ?? '';
    const claim = (payload as Record<string, unknown>)[cfg.sessionClaim];
    let sessions: string[] | undefined;
    if (claim !== undefined) {
      // Fail closed: a restriction claim we cannot read must not grant every session.
      if (!Array.isArray(claim) || !claim.every((s) => typeof s === 'string')) {
        refuse(ctx, 'INVALID_TOKEN', `The token's "${cfg.sessionClaim}" claim must be an array of session ids.`, 'invalid_token');
      }
      sessions = claim as string[];
    }
    return { kind: 'jwt', subject: sub.slice(0, 256), scopes: scopesFromClaims(payload), sessions };
  }

  /** Maps a jose error (matched on its `code`) to a 401 that names what was wrong, or a 503 for JWKS outages. */
  #jwtFailure(ctx: Ctx, err: unknown): never {
    const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; claim?: unknown; reason?: unknown; payload?: { exp?: unknown } };
    switch (e.code) {
      case 'ERR_JWT_EXPIRED': {
        const exp = typeof e.payload?.exp === 'number' ? ` at ${new Date(e.payload.exp * 1000).toISOString()}` : '';
        return refuse(ctx, 'TOKEN_EXPIRED', `The token expired${exp}.`, 'invalid_token');
      }
      case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
        const claim = typeof e.claim === 'string' ? e.claim : 'unknown';
        const message =
          e.reason === 'missing'
            ? `The token has no "${claim}" claim.`
            : claim === 'iss'
              ? 'The token issuer is not accepted.'
              : claim === 'aud'
                ? 'The token audience is not accepted.'
                : claim === 'nbf'
                  ? 'The token is not valid yet (nbf is in the future).'
                  : claim === 'iat'
                    ? 'The token was issued in the future.'
                    : `The token's "${claim}" claim is not valid.`;
        return refuse(ctx, 'INVALID_TOKEN', message, 'invalid_token', { claim });
      }
      case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
        return refuse(ctx, 'INVALID_TOKEN', 'The token signature is not valid.', 'invalid_token');
      case 'ERR_JOSE_ALG_NOT_ALLOWED':
        return refuse(ctx, 'INVALID_TOKEN', `The token's signing algorithm is not accepted (accepted: ${this.#config.jwt?.algorithms.join(', ')}).`, 'invalid_token');
      case 'ERR_JWKS_NO_MATCHING_KEY':
      case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
        return refuse(ctx, 'INVALID_TOKEN', 'No single key of the issuer matches the token (kid).', 'invalid_token');
      case 'ERR_JWKS_TIMEOUT':
      case 'ERR_JWKS_INVALID':
        this.#log.warn({ code: e.code }, 'JWKS unavailable');
        throw new GatewayError('DEPENDENCY_UNAVAILABLE', 'The token keys (JWKS) could not be fetched.');
      case 'ERR_JWS_INVALID':
      case 'ERR_JWT_INVALID':
      case 'ERR_JOSE_NOT_SUPPORTED':
      case 'ERR_JWK_INVALID':
      case 'ERR_JOSE_GENERIC':
        return refuse(ctx, 'INVALID_TOKEN', 'The token is malformed.', 'invalid_token');
      default:
        if (this.#config.jwt?.kind === 'jwks' && !(typeof e.code === 'string' && e.code.startsWith('ERR_J'))) {
          // A fetch failure of the JWKS (connection refused, DNS, non-200): the caller's token may be fine.
          this.#log.warn({ err: err instanceof Error ? err.message : String(err) }, 'JWKS unavailable');
          throw new GatewayError('DEPENDENCY_UNAVAILABLE', 'The token keys (JWKS) could not be fetched.');
        }
        this.#log.info({ code: typeof e.code === 'string' ? e.code : undefined }, 'token refused for an unexpected reason');
        return refuse(ctx, 'INVALID_TOKEN', 'The token is not valid.', 'invalid_token');
    }
  }

  /**
   * Whether a caller of a public route may see its operational details (`/health`: shards, pids, dependency
   * errors): METRICS_TOKEN as the bearer token, or credentials with the admin scope (so everyone in anonymous
   * or disabled mode). Never throws and leaves no challenge header: a caller without them gets the summary.
   */
  async mayReadDetails(ctx: Ctx): Promise<boolean> {
    if (this.#metricsDigest !== undefined) {
      const given = /^Bearer +(\S+) *$/i.exec(ctx.get('authorization'))?.[1];
      if (given !== undefined && constantTimeEqual(createHash('sha256').update(given).digest(), this.#metricsDigest)) return true;
    }
    if (this.mode !== 'anonymous' && this.mode !== 'disabled' && ctx.get('authorization') === '' && ctx.get('x-api-key') === '') return false;
    try {
      return hasScope(await this.#resolve(ctx), 'admin');
    } catch {
      ctx.remove('WWW-Authenticate');
      return false;
    }
  }

  /** Throws 401 unless METRICS_TOKEN is unset or presented; called by the /metrics route itself as well. */
  checkMetricsToken(ctx: Ctx): void {
    if (this.#metricsDigest === undefined) return;
    const match = /^Bearer +(\S+) *$/i.exec(ctx.get('authorization'));
    const given = match?.[1];
    if (given === undefined) refuse(ctx, 'UNAUTHORIZED', '/metrics requires Authorization: Bearer <METRICS_TOKEN>.', undefined);
    if (!constantTimeEqual(createHash('sha256').update(given).digest(), this.#metricsDigest)) {
      refuse(ctx, 'UNAUTHORIZED', 'The metrics token is not valid.', 'invalid_token');
    }
  }
}

/** Builds the authenticator; throws ConfigError in production when no credential source is configured. */
export function createAuthenticator(config: GatewayConfig, options: AuthenticatorOptions): Authenticator {
  return new Authenticator(config, options);
}

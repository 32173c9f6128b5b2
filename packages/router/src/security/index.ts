/** The security edge: authentication, scopes, rate limits, request limits, webhook URL policy. */
export { Authenticator, createAuthenticator, isPublicPath, PUBLIC_PATHS, scopesFromClaims } from './auth.ts';
export type { AuthMode, AuthenticatorOptions, RequireAuthOptions } from './auth.ts';
export { ApiKeyStore, constantTimeEqual, generateApiKey, hashApiKey } from './api-keys.ts';
export { ANONYMOUS, AUTH_SCOPES, assertScopes, assertSessionAllowed, hasScope, isScope, sessionAllowed } from './principal.ts';
export type { AuthScope, Principal, SecurityState } from './principal.ts';
export { BoundedMap, RateLimits, logRateLimitDecision } from './rate-limit.ts';
export type { RateLimitRedis, RateLimitsOptions } from './rate-limit.ts';
export {
  assertContentLength,
  assertJsonDepth,
  assertJsonRequest,
  assertJsonTextDepth,
  bodyLimitsFrom,
  readBodyLimited,
  readJsonBody,
  uploadLimits,
  uploadTooLarge,
} from './limits.ts';
export type { BodyLimits } from './limits.ts';
export { isNonPublicAddress, validateWebhookUrl } from './webhook-url.ts';
export type { WebhookUrlOptions } from './webhook-url.ts';
export { FORWARD_HEADERS, FORWARD_VALIDITY_MS, ForwardVerifier, signForwarded } from './forwarded.ts';
export type { ForwardedCall } from './forwarded.ts';

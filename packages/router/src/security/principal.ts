/**
 * Who is calling: the principal every authenticated request carries on `ctx.state.principal`, its scopes,
 * and the checks the route layer runs against it. `admin` implies every other scope.
 */
import { AUTH_SCOPES, GatewayError } from '@wagw/shared';
import type { AuthScope, Logger } from '@wagw/shared';
import type { ForwardedCall } from './forwarded.ts';

export type { AuthScope } from '@wagw/shared';
export { AUTH_SCOPES } from '@wagw/shared';

export interface Principal {
  kind: 'jwt' | 'api-key' | 'anonymous';
  /** Token `sub`, API key name, or `anonymous`. */
  subject: string;
  scopes: readonly AuthScope[];
  /** Session ids this principal may touch; undefined means any. */
  sessions?: readonly string[] | undefined;
}

/** The slice of the request state the security middleware reads and writes. */
export interface SecurityState {
  log: Logger;
  /** Adds fields to `log` without building a child logger before a line is written (the app's request state). */
  bindLog?: (bindings: Record<string, unknown>) => void;
  principal?: Principal | undefined;
  /** Set on a call another router forwarded with a valid cluster signature (security/forwarded.ts). */
  forwarded?: ForwardedCall | undefined;
}

export function isScope(value: unknown): value is AuthScope {
  return typeof value === 'string' && (AUTH_SCOPES as readonly string[]).includes(value);
}

export function hasScope(principal: Principal, scope: AuthScope): boolean {
  return principal.scopes.includes('admin') || principal.scopes.includes(scope);
}

/** Throws INSUFFICIENT_SCOPE naming the missing scopes. All of `required` are needed. */
export function assertScopes(principal: Principal, required: readonly AuthScope[]): void {
  const missing = required.filter((s) => !hasScope(principal, s));
  if (missing.length > 0) {
    throw new GatewayError('INSUFFICIENT_SCOPE', `This route requires the scope ${missing.join(' and ')}.`, {
      required: [...required],
      missing,
      granted: [...principal.scopes],
    });
  }
}

/** Throws SESSION_NOT_ALLOWED when the principal is limited to other session ids. */
export function assertSessionAllowed(principal: Principal, sessionId: string): void {
  if (principal.sessions === undefined || principal.sessions.includes(sessionId)) return;
  throw new GatewayError('SESSION_NOT_ALLOWED', `The credentials do not allow session "${sessionId.slice(0, 128)}".`, {
    session: sessionId.slice(0, 128),
  });
}

/** Whether the principal may see this session (for filtering lists). */
export function sessionAllowed(principal: Principal, sessionId: string): boolean {
  return principal.sessions === undefined || principal.sessions.includes(sessionId);
}

export const ANONYMOUS: Principal = Object.freeze({ kind: 'anonymous', subject: 'anonymous', scopes: Object.freeze(['admin'] as AuthScope[]) });

/**
 * The one registry of error codes. Every error that leaves a process (HTTP response, IPC reply,
 * webhook) carries one of these codes. Match on `err.code`, never on `instanceof`.
 * docs/errors.md is checked against this table by a test.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
  /** Exposed errors show their own message to API callers; the others show the generic one. */
  readonly expose: boolean;
}

export const ERRORS = {
  BAD_REQUEST: { status: 400, message: 'The request is malformed.', expose: true },
  VALIDATION_FAILED: { status: 400, message: 'The request failed validation.', expose: true },
  INVALID_IDEMPOTENCY_KEY: { status: 400, message: 'The Idempotency-Key header must be 1-255 printable ASCII characters.', expose: true },
  INVALID_JSON: { status: 400, message: 'The request body is not valid JSON.', expose: true },
  INVALID_PHONE: { status: 400, message: 'The phone number or JID is not in an accepted format.', expose: true },
  UNAUTHORIZED: { status: 401, message: 'Authentication is required.', expose: true },
  INVALID_TOKEN: { status: 401, message: 'The bearer token is not valid.', expose: true },
  TOKEN_EXPIRED: { status: 401, message: 'The bearer token has expired.', expose: true },
  INVALID_API_KEY: { status: 401, message: 'The API key is not valid.', expose: true },
  FORWARD_SIGNATURE_INVALID: { status: 401, message: 'The forwarded call\'s cluster signature is missing, stale, replayed or does not match.', expose: true },
  FORBIDDEN: { status: 403, message: 'The credentials do not allow this action.', expose: true },
  INSUFFICIENT_SCOPE: { status: 403, message: 'The credentials lack a scope this route requires.', expose: true },
  SESSION_NOT_ALLOWED: { status: 403, message: 'The credentials do not allow this session.', expose: true },
  NOT_FOUND: { status: 404, message: 'No such route.', expose: true },
  SESSION_NOT_FOUND: { status: 404, message: 'No session with this id.', expose: true },
  QR_NOT_AVAILABLE: { status: 404, message: 'The session has no current QR code.', expose: true },
  MESSAGE_NOT_FOUND: { status: 404, message: 'No message with this id.', expose: true },
  GROUP_NOT_FOUND: { status: 404, message: 'No such group (or invite code), or it is not visible to this session.', expose: true },
  NOT_GROUP_MEMBER: { status: 403, message: 'The session is not a member of this group.', expose: true },
  NOT_GROUP_ADMIN: { status: 403, message: 'Only a group admin may do this.', expose: true },
  GROUP_REQUEST_REFUSED: { status: 422, message: 'WhatsApp refused the group request.', expose: true },
  HOST_NOT_FOUND: { status: 404, message: 'No host with this id in the host registry.', expose: true },
  METHOD_NOT_ALLOWED: { status: 405, message: 'The method is not allowed on this route.', expose: true },
  SESSION_EXISTS: { status: 409, message: 'A session with this id already exists.', expose: true },
  SESSION_ALREADY_CONNECTED: { status: 409, message: 'The session is already connected.', expose: true },
  SESSION_NOT_CONNECTED: { status: 409, message: 'The session is not connected.', expose: true },
  CONFLICT: { status: 409, message: 'The request conflicts with the current state.', expose: true },
  IDEMPOTENCY_IN_PROGRESS: { status: 409, message: 'A request with this Idempotency-Key is still being processed.', expose: true },
  IDEMPOTENCY_KEY_REUSED: { status: 422, message: 'This Idempotency-Key was already used with a different request.', expose: true },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large.', expose: true },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The content type is not supported.', expose: true },
  RATE_LIMITED: { status: 429, message: 'Too many requests.', expose: true },
  UPLOAD_QUOTA_EXCEEDED: { status: 429, message: 'The session holds as many uploads as its quota allows.', expose: true },
  QUEUE_FULL: { status: 429, message: 'The session send queue is full.', expose: true },
  TOO_MANY_STREAMS: { status: 429, message: 'Too many event streams.', expose: true },
  QUEUE_TIMEOUT: { status: 429, message: 'The send waited too long in the session send queue and was not sent.', expose: true },
  WA_RATE_LIMITED: { status: 429, message: 'WhatsApp refused the send as rate limited.', expose: true },
  INTERNAL: { status: 500, message: 'Internal error.', expose: false },
  CONFIG_INVALID: { status: 500, message: 'The configuration is invalid.', expose: false },
  SHARD_UNAVAILABLE: { status: 503, message: 'The shard owning this session is unavailable.', expose: true },
  SHARD_CRASHED: { status: 503, message: 'The shard exited while handling the call.', expose: true },
  NO_CAPACITY: { status: 503, message: 'No shard has room for another session.', expose: true },
  HOST_UNAVAILABLE: { status: 503, message: 'The target host is dead, draining or has no room.', expose: true },
  QUEUE_CLOSED: { status: 503, message: 'The send was not made: the session is stopping and its send queue closed.', expose: true },
  SHUTTING_DOWN: { status: 503, message: 'The gateway is shutting down.', expose: true },
  BODY_BUDGET_EXHAUSTED: { status: 503, message: 'Too many large request bodies are being received at once.', expose: true },
  DEPENDENCY_UNAVAILABLE: { status: 503, message: 'A backing service is unavailable.', expose: true },
  LEASE_LOST: { status: 503, message: 'This process no longer holds the session lease.', expose: true },
  STALE_EPOCH: { status: 409, message: 'The write carries a stale lease epoch.', expose: true },
  IPC_TIMEOUT: { status: 504, message: 'The shard did not answer in time.', expose: true },
  WA_TIMEOUT: { status: 504, message: 'WhatsApp did not answer in time.', expose: true },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** The serialisable shape errors take across IPC and in HTTP bodies. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly expose: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>, options?: ErrorOptions) {
    const spec = ERRORS[code];
    super(message ?? spec.message, options);
    this.name = 'GatewayError';
    this.code = code;
    this.status = spec.status;
    this.expose = spec.expose;
    this.details = details;
  }

  toJSON(): ErrorBody {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/**
 * True for an error carrying a registry code. House style matches on `code`, never on the class: a second copy
 * of this module (another realm, a worker) or an error rebuilt elsewhere still counts.
 */
export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof Error && isErrorCode((err as { code?: unknown }).code);
}

/** Rebuilds an error that crossed a process boundary as `{code, message}`. */
export function fromErrorBody(body: { code?: unknown; message?: unknown; details?: unknown }): GatewayError {
  const code = isErrorCode(body.code) ? body.code : 'INTERNAL';
  const message = typeof body.message === 'string' ? body.message : undefined;
  const details =
    body.details !== null && typeof body.details === 'object' ? (body.details as Record<string, unknown>) : undefined;
  return new GatewayError(code, message, details);
}

/** Any thrown value as an error body; unknown errors become INTERNAL without leaking their text. */
export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof Error && isErrorCode((err as { code?: unknown }).code)) {
    const e = err as Error & { code: ErrorCode; details?: Record<string, unknown> };
    return e.details === undefined ? { code: e.code, message: e.message } : { code: e.code, message: e.message, details: e.details };
  }
  return { code: 'INTERNAL', message: ERRORS.INTERNAL.message };
}

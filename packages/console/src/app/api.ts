// The console's only way to the gateway: the public REST API and SSE, with the signed-in credential.

export type CredentialKind = 'api-key' | 'jwt';
export interface Credential {
  kind: CredentialKind;
  value: string;
}

/** The API reference page (/docs) reads the same key to pre-authorise "Try it out". */
const STORAGE_KEY = 'wagw.credential';

export function loadCredential(): Credential | null {
  try {
    const c = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null') as Partial<Credential> | null;
    if (c && (c.kind === 'api-key' || c.kind === 'jwt') && typeof c.value === 'string' && c.value !== '') return { kind: c.kind, value: c.value };
  } catch {
    // A corrupt entry is the same as none: sign in again.
  }
  return null;
}

export function saveCredential(c: Credential | null): void {
  if (c === null) sessionStorage.removeItem(STORAGE_KEY);
  else sessionStorage.setItem(STORAGE_KEY, JSON.stringify(c));
}

export function authHeaders(c: Credential | null): Record<string, string> {
  if (c === null) return {};
  return c.kind === 'api-key' ? { 'x-api-key': c.value } : { authorization: `Bearer ${c.value}` };
}

/** An API error as the gateway sent it: `{error: {code, message}}`. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let current: Credential | null = loadCredential();
export function setCredential(c: Credential | null): void {
  current = c;
  saveCredential(c);
}
export function credential(): Credential | null {
  return current;
}

async function failure(res: Response): Promise<ApiError> {
  let code = `HTTP_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(res.status, code, message);
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { ...authHeaders(current) };
  const init: RequestInit = { method, headers };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}

/** A binary resource (QR image, media) as an object URL for an <img>; the caller revokes it. */
export async function apiObjectUrl(path: string): Promise<string> {
  const res = await fetch(path, { headers: authHeaders(current) });
  if (!res.ok) throw await failure(res);
  return URL.createObjectURL(await res.blob());
}

export async function uploadFile<T>(path: string, file: File): Promise<T> {
  const form = new FormData();
  form.append('file', file, file.name);
  const res = await fetch(path, { method: 'POST', headers: authHeaders(current), body: form });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export interface SseEvent {
  type: string;
  data: Record<string, unknown>;
  at: number;
}

/**
 * Reads a Server-Sent-Events stream with fetch(), because EventSource cannot send the Authorization or
 * X-Api-Key header the API needs. Reconnects after a drop (1 s, then up to 10 s); `close()` ends it.
 */
export function openEvents(path: string, onEvent: (e: SseEvent) => void, onState: (connected: boolean) => void): { close(): void } {
  let stopped = false;
  let controller: AbortController | undefined;
  let delay = 1000;
  const run = async (): Promise<void> => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const res = await fetch(path, { headers: { ...authHeaders(current), accept: 'text/event-stream' }, signal: controller.signal });
        if (!res.ok || res.body === null) throw await failure(res);
        onState(true);
        delay = 1000;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let type = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) type = line.slice(7);
              else if (line.startsWith('data: ')) data.push(line.slice(6));
            }
            if (data.length === 0) continue;
            try {
              onEvent({ type, data: JSON.parse(data.join('\n')) as Record<string, unknown>, at: Date.now() });
            } catch {
              // A malformed event is skipped, the stream goes on.
            }
          }
        }
      } catch (err) {
        if (stopped) return;
        // 401/403 will not get better by retrying fast.
        if (err instanceof ApiError && (err.status === 401 || err.status === 403)) delay = 10_000;
      }
      onState(false);
      if (stopped) return;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  };
  void run();
  return {
    close() {
      stopped = true;
      controller?.abort();
    },
  };
}

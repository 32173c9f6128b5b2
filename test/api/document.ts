// The gateway's OpenAPI document as a client sees it: a real GatewayRouter (embedded stores, webhooks on, one
// shard, the simulator for the WhatsApp endpoint) serving GET /openapi.json. Shared by the lint, client and
// response-checking tests so they all judge the same document.
import { ERRORS, isErrorCode } from '@wagw/shared';
import type { Cleanup } from '../harness/index.ts';
import { tempDir } from '../harness/index.ts';
import { sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';
import type { Gateway } from '../sessions/helpers.ts';

export interface OpenApiOperation {
  operationId?: string;
  security?: Record<string, string[]>[];
  responses: Record<string, { description: string; content?: Record<string, { schema?: unknown }> }>;
  requestBody?: { content: Record<string, unknown> };
}

export interface OpenApiDocument {
  openapi: string;
  servers?: { url: string }[];
  security?: Record<string, string[]>[];
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, unknown> };
}

/** A gateway (started for `t`, closed with it) and its document. `env` adds or overrides variables. */
export async function gatewayWithDocument(t: Cleanup, env: Record<string, string> = {}): Promise<{ gw: Gateway; doc: OpenApiDocument }> {
  const dir = await tempDir(t);
  const sim = await startSim(t, dir.path);
  const gw = await startGateway(t, { webhooks: true, env: sessionTestEnv(dir.path, { ...sim.env, SHARD_COUNT: '1', ...env }) });
  const res = await gw.api.get<OpenApiDocument>('/openapi.json');
  if (res.status !== 200) throw new Error(`GET /openapi.json -> ${res.status}`);
  return { gw, doc: res.body };
}

/**
 * Whether an answer is one the document promises for `method` `template` (`:param` form): its status is listed
 * for the operation, and an error status carries the Error schema's body with a registered code. Returns the
 * problem, or undefined when the answer matches (or the request names no operation of the document).
 */
export function responseProblem(doc: OpenApiDocument, method: string, template: string, status: number, body: string): string | undefined {
  const op = doc.paths[template.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]?.[method.toLowerCase()];
  if (op === undefined) return undefined;
  const listed = op.responses[String(status)];
  if (listed === undefined) return `status ${status} is not listed for ${op.operationId ?? method} (lists ${Object.keys(op.responses).join(', ')})`;
  if (status < 400 || method === 'HEAD') return undefined;
  if (listed.content?.['application/json'] === undefined) return `the listed ${status} has no JSON error body`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return 'the error body is not JSON';
  }
  const error = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } }).error;
  if (typeof error?.code !== 'string' || !isErrorCode(error.code)) return `the error code ${String(error?.code)} is not in the registry`;
  if (ERRORS[error.code].status !== status) return `${error.code} is a ${ERRORS[error.code].status}, answered as ${status}`;
  if (typeof error.message !== 'string' || error.message.length === 0) return 'the error has no message';
  if (error.details !== undefined && (typeof error.details !== 'object' || error.details === null || Array.isArray(error.details))) return 'error.details is not an object';
  return undefined;
}

// The gateway's OpenAPI document as a client sees it: a real GatewayRouter (embedded stores, webhooks on, one
// shard, the simulator for the WhatsApp endpoint) serving GET /openapi.json. Shared by the lint, client and
// response-checking tests so they all judge the same document.
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

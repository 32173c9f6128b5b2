/** The OpenAPI 3.1 document built from the route definitions, served at /openapi.json (rendered by Swagger UI at /docs). */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import type { Router } from '@koa/router';
import type { AppState } from '../app.ts';

export function createOpenApiRegistry(): OpenAPIRegistry {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  registry.registerComponent('securitySchemes', 'apiKey', { type: 'apiKey', in: 'header', name: 'X-Api-Key' });
  return registry;
}

export function buildOpenApiDocument(registry: OpenAPIRegistry, version = '1.0.0'): Record<string, unknown> {
  const generator = new OpenApiGeneratorV31(registry.definitions);
  return generator.generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'WhatsApp gateway',
      version,
      description: 'Router REST API: sessions, messages, operators. Errors: {"error":{"code","message","details?"}}; the codes are in docs/errors.md.',
    },
    // Relative: the host that serves this document serves the API (every router of the cluster does).
    servers: [{ url: '/', description: 'The gateway serving this document' }],
    // Every operation that needs no credentials says `security: []`.
    security: [{ bearerAuth: [] }, { apiKey: [] }],
    tags: [
      { name: 'sessions', description: 'Session lifecycle: create, pair (QR or code), status events, restart, migrate, delete' },
      { name: 'messages', description: 'Send, history, receipts, edits, media uploads and downloads' },
      { name: 'admin', description: 'Operators: shards, hosts, webhook deliveries (scope admin)' },
      { name: 'operations', description: 'Health, readiness, metrics and this document (no API credentials)' },
    ],
  }) as unknown as Record<string, unknown>;
}

/** Mounts GET /openapi.json (public); the /docs page renders it (console-routes.ts). Built once, at first request. */
export function mountOpenApi(router: Router<AppState>, registry: OpenAPIRegistry): void {
  let doc: Record<string, unknown> | undefined;
  router.get('/openapi.json', (ctx) => {
    doc ??= buildOpenApiDocument(registry);
    ctx.body = doc;
  });
}

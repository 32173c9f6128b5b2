/** The OpenAPI 3.1 document built from the route definitions, served at /openapi.json with a docs page at /docs. */
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

const DOCS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WhatsApp gateway API</title>
<style>body{font:14px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}code{background:#f4f4f4;padding:0 .3em}
.op{border:1px solid #ddd;border-radius:6px;margin:.6em 0;padding:.5em .8em}.m{font-weight:bold;text-transform:uppercase;display:inline-block;width:4.5em}</style>
</head><body><h1>WhatsApp gateway API</h1><p>The machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
<div id="ops">Loading...</div>
<script>
fetch('/openapi.json').then(r=>r.json()).then(doc=>{const el=document.getElementById('ops');el.textContent='';
for(const [path,item] of Object.entries(doc.paths||{}))for(const [m,op] of Object.entries(item)){const d=document.createElement('div');d.className='op';
const h=document.createElement('div');const s=document.createElement('span');s.className='m';s.textContent=m;h.append(s,' ');const c=document.createElement('code');c.textContent=path;h.append(c);
const p=document.createElement('div');p.textContent=op.summary||'';const r=document.createElement('div');r.textContent='responses: '+Object.keys(op.responses||{}).join(', ');d.append(h,p,r);el.append(d);}});
</script></body></html>`;

/** Mounts GET /openapi.json and GET /docs (public). The document is built once, at first request. */
export function mountOpenApi(router: Router<AppState>, registry: OpenAPIRegistry): void {
  let doc: Record<string, unknown> | undefined;
  router.get('/openapi.json', (ctx) => {
    doc ??= buildOpenApiDocument(registry);
    ctx.body = doc;
  });
  router.get('/docs', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.set('content-security-policy', "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'");
    ctx.body = DOCS_PAGE;
  });
}

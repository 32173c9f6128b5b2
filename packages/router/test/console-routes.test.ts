// The console's and the API reference's static routes on the real Koa app: /console redirects to /console/, the
// page and its files carry the console CSP (scripts from this origin only), config.json says whether the
// simulator button exists, Swagger UI's files come from swagger-ui-dist, and anything else is a JSON 404.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createRootLogger } from '@wagw/shared';
import { Lifecycle, createApp } from '../src/app.ts';
import { CONSOLE_CSP } from '../src/api/console-routes.ts';
import { RouterMetrics } from '../src/metrics.ts';

describe('console and docs routes', () => {
  let base = '';
  let server: http.Server;
  before(async () => {
    const lifecycle = new Lifecycle();
    lifecycle.markReady();
    const app = createApp({
      logger: createRootLogger({ proc: 'test', level: 'silent' }),
      shards: { list: () => [], pendingCount: () => 0, call: () => Promise.reject(new Error('no shards')) },
      dependencies: async () => ({}),
      lifecycle,
      metrics: new RouterMetrics({ defaultMetrics: false }),
      hostId: 'test',
    });
    server = http.createServer(app.callback());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('/console/ redirects to /console, which is the page with the console CSP', async () => {
    const redirect = await fetch(`${base}/console/`, { redirect: 'manual' });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('location'), '/console');
    const page = await fetch(`${base}/console`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-security-policy'), CONSOLE_CSP);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const js = await fetch(`${base}/console/app.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.ok((await js.arrayBuffer()).byteLength > 1000);
  });

  test('config.json: no simulator unless one is wired in', async () => {
    assert.deepEqual(await (await fetch(`${base}/console/config.json`)).json(), { simulator: false });
  });

  test('unknown console and docs files are JSON 404s, never a file outside the list', async () => {
    for (const path of ['/console/nope.js', '/console/..%2Fpackage.json', '/docs/package.json', '/docs/..%2F..%2Fpackage.json']) {
      const r = await fetch(`${base}${path}`);
      assert.equal(r.status, 404, path);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'NOT_FOUND', path);
    }
  });

  test('/docs is Swagger UI from swagger-ui-dist, started by a same-origin script', async () => {
    const page = await fetch(`${base}/docs`);
    const html = await page.text();
    assert.match(html, /\/docs\/swagger-ui-bundle\.js/);
    assert.match(html, /\/openapi\.json/);
    assert.doesNotMatch(html, /<script>/, 'no inline script');
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self';/);
    const bundle = await fetch(`${base}/docs/swagger-ui-bundle.js`);
    assert.equal(bundle.status, 200);
    assert.match(await bundle.text(), /SwaggerUIBundle/);
    const init = await (await fetch(`${base}/docs/init.js`)).text();
    assert.match(init, /preauthorizeApiKey\('apiKey'/);
  });
});

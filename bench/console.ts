// The console's weight and first load on loopback: bundle sizes (raw and gzip), the esbuild build the router
// runs at the first /console request, and the time Chromium takes from navigation to the rendered sign-in
// form (fresh profile each run, so nothing is cached). Serves the real router app (createApp) with stub shards.
// Prints the figures and writes them to docs/benchmarks.md ("Console"). `npm run bench:console [runs]`.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { buildConsole } from '@wagw/console';
import { Lifecycle, RouterMetrics, createApp } from '@wagw/router';
import { createRootLogger } from '@wagw/shared';
import { writeBenchSection } from './report.ts';

const RUNS = Number(process.argv[2] ?? 10);
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};
const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;

const bundle = await buildConsole();
const sizes = [...bundle.files].map(([name, f]) => ({ name, raw: f.body.length, gzip: gzipSync(f.body).length }));
const total = sizes.reduce((a, s) => ({ raw: a.raw + s.raw, gzip: a.gzip + s.gzip }), { raw: 0, gzip: 0 });

const lifecycle = new Lifecycle();
lifecycle.markReady();
const app = createApp({
  logger: createRootLogger({ proc: 'bench', level: 'error' }),
  shards: { list: () => [], pendingCount: () => 0, call: () => Promise.reject(new Error('no shards in this bench')) },
  dependencies: async () => ({}),
  lifecycle,
  metrics: new RouterMetrics({ defaultMetrics: false }),
  hostId: 'bench',
});
const server = http.createServer(app.callback());
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

// The router builds the bundle at the first request of a console file.
const t0 = performance.now();
await (await fetch(`${base}/console/app.js`)).arrayBuffer();
const firstRequestMs = performance.now() - t0;

const loads: number[] = [];
const domReady: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'wagw-bench-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, headless: true });
  try {
    const page = await context.newPage();
    const start = performance.now();
    await page.goto(`${base}/console/`);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    loads.push(performance.now() - start);
    // Runs in the page (DOM types are not in this package's lib): the navigation entry's DOMContentLoaded end.
    domReady.push(
      await page.evaluate(() => {
        const perf = (globalThis as unknown as { performance: { getEntriesByType(t: string): { domContentLoadedEventEnd?: number }[] } }).performance;
        return perf.getEntriesByType('navigation')[0]?.domContentLoadedEventEnd ?? NaN;
      }),
    );
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}
server.close();

const lines = [
  `Console bundle (built in memory by esbuild in ${Math.round(bundle.buildMs)} ms; first /console request including the build: ${Math.round(firstRequestMs)} ms):`,
  '',
  '| file | raw | gzip |',
  '|---|---|---|',
  ...sizes.map((s) => `| ${s.name} | ${kib(s.raw)} | ${kib(s.gzip)} |`),
  `| total | ${kib(total.raw)} | ${kib(total.gzip)} |`,
  '',
  `First load on loopback, Chromium headless with a fresh profile, ${RUNS} runs: navigation to the rendered sign-in form median ${Math.round(median(loads))} ms (min ${Math.round(Math.min(...loads))}, max ${Math.round(Math.max(...loads))}); DOMContentLoaded median ${Math.round(median(domReady))} ms.`,
  '',
  `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), shared; Node ${process.version}. Run: \`npm run bench:console\`.`,
];
const body = lines.join('\n');
process.stdout.write(`${body}\n`);
writeBenchSection('Console', body);

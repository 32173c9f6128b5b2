// Real Chromium for the console tests (Debian's `chromium` through playwright-core), loopback only: a fresh
// profile per launch, background networking, sync, component updates and QUIC off, and every request the
// page makes to a host other than 127.0.0.1 aborted and recorded (the test fails on any).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import type { Cleanup } from '../harness/index.ts';
import { tempDir } from '../harness/index.ts';

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-default-browser-check',
  '--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication',
];

export interface Browser {
  context: BrowserContext;
  /** Requests to anything but loopback (aborted): must stay empty. */
  offLoopback: string[];
  /** Console errors of every page (CSP violations show up here). */
  errors: string[];
  newPage(): Promise<Page>;
}

export async function launchChromium(t: Cleanup): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: run \`apt-get install chromium\` (npm test's bootstrap does it as root) or set CHROMIUM_PATH`);
  }
  const profile = await tempDir(t, 'wagw-chromium-');
  const context = await chromium.launchPersistentContext(profile.path, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 1280, height: 900 },
  });
  t.after(() => context.close());
  const offLoopback: string[] = [];
  const errors: string[] = [];
  await context.route('**/*', async (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === 'data:' || url.protocol === 'blob:' || url.hostname === '127.0.0.1') return route.continue();
    offLoopback.push(url.href);
    return route.abort();
  });
  return {
    context,
    offLoopback,
    errors,
    async newPage() {
      const page = await context.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('response', (r) => {
        if (r.status() >= 400) errors.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}${new URL(r.url()).search}`);
      });
      return page;
    },
  };
}

let axeSource: Promise<string> | undefined;

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown; failureSummary?: string }[];
}

/**
 * Runs axe-core in the page (evaluated through the DevTools protocol, so the console's CSP stays as served)
 * and returns the serious and critical violations.
 */
export async function axeSerious(page: Page): Promise<AxeViolation[]> {
  axeSource ??= readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  const src = await axeSource;
  await page.evaluate(src);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: AxeViolation[] }> } }).axe;
    const doc = (globalThis as unknown as { document: unknown }).document;
    const r = await axe.run(doc, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

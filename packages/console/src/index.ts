/**
 * The web console's bundle, built in memory with esbuild's API from the sources in `src/app` (Preact + htm, no
 * JSX step). The router builds it once, at the first request of /console, so a clean clone needs no build
 * step and nothing is fetched at run time: everything the page loads comes from this package's dependencies.
 * Why this stack: docs/console.md.
 */
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface ConsoleAsset {
  body: Buffer;
  /** The Content-Type to serve it with. */
  type: string;
}

export interface ConsoleBundle {
  /** By file name under /console/ (`index.html`, `app.js`, `app.css`). */
  files: ReadonlyMap<string, ConsoleAsset>;
  /** How long the build took (logged by the router, printed by bench/console.ts). */
  buildMs: number;
}

const APP_DIR = fileURLToPath(new URL('./app/', import.meta.url));

/** Builds the console: minified ES module, its stylesheet and the HTML shell (no inline script or style). */
export async function buildConsole(): Promise<ConsoleBundle> {
  const t0 = performance.now();
  const [result, css, html] = await Promise.all([
    build({
      entryPoints: [`${APP_DIR}main.ts`],
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
      legalComments: 'none',
      logLevel: 'silent',
      outfile: 'app.js',
    }),
    readFile(`${APP_DIR}style.css`),
    readFile(`${APP_DIR}index.html`),
  ]);
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'));
  if (js === undefined) throw new Error('esbuild produced no JavaScript for the console');
  const files = new Map<string, ConsoleAsset>([
    ['index.html', { body: html, type: 'text/html; charset=utf-8' }],
    ['app.js', { body: Buffer.from(js.contents), type: 'text/javascript; charset=utf-8' }],
    ['app.css', { body: css, type: 'text/css; charset=utf-8' }],
  ]);
  return { files, buildMs: performance.now() - t0 };
}

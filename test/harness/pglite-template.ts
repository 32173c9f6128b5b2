/**
 * An initialised embedded-PostgreSQL directory to copy into a test's DATA_DIR. A fresh PGlite directory costs
 * about 7 s of CPU (initdb inside WASM); opening one already initialised about 2.8 s. With some 50 gateways on
 * embedded stores per `npm test`, initdb alone was ~30% of the suite's CPU on this 2-core box. The harness
 * initialises one directory per machine and PGlite version (with the gateway's own `EmbeddedPostgres`, no
 * migrations), and `seedEmbeddedDb` copies it to `DATA_DIR/pglite`; the gateway then opens and migrates it as it
 * would any existing directory. Tests that exercise the first start itself (the demo, the stores' own tests)
 * do not seed.
 */
import { cp, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRootLogger } from '@wagw/shared';
import { EmbeddedPostgres } from '@wagw/stores';

const PGLITE_PACKAGE = fileURLToPath(new URL('../../packages/stores/node_modules/@electric-sql/pglite/package.json', import.meta.url));
const COMPLETE = '.wagw-template-complete';

let template: Promise<string> | undefined;

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function buildTemplate(): Promise<string> {
  const { version } = JSON.parse(await readFile(PGLITE_PACKAGE, 'utf8')) as { version: string };
  const dir = path.join(os.tmpdir(), `wagw-pglite-template-${version}`);
  if (await exists(path.join(dir, COMPLETE))) return dir;
  // Built aside and renamed into place, so a concurrent test process sees either no template or a whole one.
  const building = `${dir}.building-${process.pid}`;
  await rm(building, { recursive: true, force: true });
  await mkdir(building, { recursive: true });
  const server = await EmbeddedPostgres.start({ dataDir: building, port: 0, logger: createRootLogger({ proc: 'test', level: 'fatal' }) });
  await server.stop();
  await mkdir(path.join(building, COMPLETE));
  try {
    await rename(building, dir);
  } catch (err) {
    // Another process won the race (ENOTEMPTY/EEXIST): use its template.
    await rm(building, { recursive: true, force: true });
    if (!(await exists(path.join(dir, COMPLETE)))) throw err;
  }
  return dir;
}

/** Copies the initialised template to `<dataDir>/pglite` unless that directory exists already. */
export async function seedEmbeddedDb(dataDir: string): Promise<void> {
  const target = path.join(dataDir, 'pglite');
  if (await exists(target)) return;
  template ??= buildTemplate();
  const source = await template;
  await cp(source, target, { recursive: true, filter: (src) => path.basename(src) !== COMPLETE });
}

// Runs every unit and integration test of the workspace in ONE node:test run, so there is one summary.
// Heavy load and chaos suites are separate commands (see README); they are not part of this run.
//
//   node scripts/test.ts            every test but the dependency-fault suites (`npm test`)
//   node scripts/test.ts --faults   only the dependency-fault suites, test/faults (`npm run test:faults`)
//
// The fault suites hold Redis, PostgreSQL or the blob store down for the 30 s issue #14 asks for, with traffic
// flowing: about 3 minutes of test time, 85 s of the default run's wall time on 2 cores. They run in CI right
// after `npm test` (.ci/run), so the default run stays within its 10-minute budget.
import { spawn } from 'node:child_process';
import { globSync } from 'node:fs';

const FAULTS = 'test/faults/**/*.test.ts';
const args = process.argv.slice(2);
const faults = args.includes('--faults');
const patterns = faults ? [FAULTS] : ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'];
const isFaultSuite = (f: string): boolean => f.startsWith('test/faults/');
const files = patterns
  .flatMap((p) => globSync(p, { exclude: (f) => f.includes('node_modules') }))
  .filter((f) => faults || !isFaultSuite(f))
  .sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const extra = args.filter((a) => a !== '--faults');
const concurrency = process.env['TEST_CONCURRENCY'] ?? '2';
// No --test-force-exit: with it, Node 24 drops results of tests that ran from the report at exit code 0 (a file
// of 37 tests reported 35-37; nodejs/node#54327 and alike), so a count, or a failure, could go missing. Every
// file ends on its own (the full run: 384 tests, 384 reported).
const child = spawn(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=180000', ...extra, ...files],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

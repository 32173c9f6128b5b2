// Fails `npm test` when the sources break the package rules of scripts/architecture.ts (cycles included).
import { fileURLToPath } from 'node:url';
import { checkArchitecture, describeViolation } from './architecture.ts';

const baseDir = fileURLToPath(new URL('..', import.meta.url));
const roots = ['packages/shared/src', 'packages/stores/src', 'packages/shard/src', 'packages/router/src', 'packages/wa-sim/src'];
const { modules, violations } = await checkArchitecture(baseDir, roots);
if (violations.length > 0) {
  console.error(`architecture rules broken (${violations.length}):`);
  for (const v of violations) console.error(`  ${describeViolation(v)}`);
  process.exit(1);
}
console.log(`architecture rules hold over ${modules} modules (no cycles, package layering intact)`);

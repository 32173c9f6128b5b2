// Fails when any package's source has an import cycle (madge over the TypeScript sources).
import madge from 'madge';

const roots = ['packages/shared/src', 'packages/stores/src', 'packages/shard/src', 'packages/router/src', 'packages/wa-sim/src'];
const result = await madge(roots, {
  fileExtensions: ['ts'],
  tsConfig: 'tsconfig.base.json',
  detectiveOptions: { ts: { skipTypeImports: true } },
});
const cycles = result.circular();
const files = Object.keys(result.obj()).length;
if (cycles.length > 0) {
  console.error(`import cycles found (${cycles.length}):`);
  for (const cycle of cycles) console.error(`  ${cycle.join(' -> ')}`);
  process.exit(1);
}
console.log(`no import cycles in ${files} files`);

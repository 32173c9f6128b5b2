/**
 * The intended dependencies between the packages, checked by dependency-cruiser over the TypeScript sources
 * (`npm test` runs scripts/check-architecture.ts; test/architecture/rules.test.ts breaks each rule on purpose):
 * - no import cycles anywhere;
 * - `shared` (contracts) imports no other package; `stores` imports only `shared`;
 * - the router and the shard never import each other (they speak only the IPC protocol of `shared`);
 * - production code never imports the simulator, and the simulator imports no production package (it stands
 *   for WhatsApp, which knows nothing of the gateway).
 * Packages reach each other through `@wagw/*` names; dependency-cruiser follows the workspace links to the real
 * paths, so the rules below speak of `packages/<name>/`.
 */
import { cruise } from 'dependency-cruiser';
import type { IForbiddenRuleType, IViolation } from 'dependency-cruiser';

const PRODUCTION = '^packages/(shared|stores|router|shard)/';

export const RULES: IForbiddenRuleType[] = [
  {
    name: 'no-cycles',
    severity: 'error',
    comment: 'An import cycle of run-time imports (a cycle through `import type` only is erased at run time).',
    from: {},
    to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
  },
  {
    name: 'shared-imports-nothing-above',
    severity: 'error',
    comment: '`shared` holds contracts only; it must not depend on any implementation package.',
    from: { path: '^packages/shared/' },
    to: { path: '^packages/(stores|router|shard|wa-sim)/' },
  },
  {
    name: 'stores-import-only-shared',
    severity: 'error',
    comment: '`stores` implements the store interfaces of `shared`; the processes build on it, not the reverse.',
    from: { path: '^packages/stores/' },
    to: { path: '^packages/(router|shard|wa-sim)/' },
  },
  {
    name: 'router-not-shard',
    severity: 'error',
    comment: 'The router talks to shards over IPC only (packages/shared/src/ipc.ts).',
    from: { path: '^packages/router/' },
    to: { path: '^packages/shard/' },
  },
  {
    name: 'shard-not-router',
    severity: 'error',
    comment: 'A shard talks to its router over IPC only (packages/shared/src/ipc.ts).',
    from: { path: '^packages/shard/' },
    to: { path: '^packages/router/' },
  },
  {
    name: 'production-not-simulator',
    severity: 'error',
    comment: 'The gateway never depends on the WhatsApp simulator (tests, benchmarks and the demo wire it in).',
    from: { path: `${PRODUCTION}src/` },
    to: { path: '^packages/wa-sim/' },
  },
  {
    name: 'simulator-not-production',
    severity: 'error',
    comment: 'The simulator stands for WhatsApp: it imports no gateway package.',
    from: { path: '^packages/wa-sim/' },
    to: { path: PRODUCTION },
  },
];

export interface ArchitectureReport {
  modules: number;
  violations: IViolation[];
}

/** Cruises `roots` (paths relative to `baseDir`) against RULES. */
export async function checkArchitecture(baseDir: string, roots: string[]): Promise<ArchitectureReport> {
  const result = await cruise(roots, {
    baseDir,
    validate: true,
    ruleSet: { forbidden: RULES },
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)node_modules/(?!@wagw/)' },
    combinedDependencies: false,
    // The workspace packages export TypeScript sources through their `exports` maps (see their package.json).
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'node', 'default'], extensions: ['.ts', '.js'] },
  });
  const output = result.output;
  if (typeof output === 'string') throw new Error(`dependency-cruiser returned text: ${output.slice(0, 200)}`);
  // A `@wagw/*` import that does not resolve would slip past every layering rule: refuse it.
  const unresolved = output.modules.flatMap((m) => m.dependencies.filter((d) => d.couldNotResolve && d.module.startsWith('@wagw/')).map((d) => `${m.source} -> ${d.module}`));
  if (unresolved.length > 0) throw new Error(`workspace imports dependency-cruiser could not resolve: ${unresolved.slice(0, 5).join(', ')}`);
  return { modules: output.modules.length, violations: output.summary.violations };
}

export function describeViolation(v: IViolation): string {
  return `${v.rule.name}: ${v.from} -> ${v.to}${v.cycle ? ` (cycle: ${v.cycle.map((c) => c.name).join(' -> ')})` : ''}`;
}

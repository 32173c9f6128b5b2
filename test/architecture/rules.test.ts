// The package rules of scripts/architecture.ts (run by `npm test` over the real sources) catch each kind of
// break: a fixture workspace with one offending import per rule, imported the way the packages really import
// each other (a `@wagw/*` name through a workspace link) or by relative path.
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { checkArchitecture, RULES } from '../../scripts/architecture.ts';
import { tempDir } from '../harness/index.ts';

const PACKAGES = ['shared', 'stores', 'router', 'shard', 'wa-sim'] as const;

async function fixture(dir: string, files: Record<string, string>): Promise<string[]> {
  for (const name of PACKAGES) {
    const root = path.join(dir, 'packages', name);
    await mkdir(path.join(root, 'src'), { recursive: true });
    await writeFile(path.join(root, 'package.json'), JSON.stringify({ name: `@wagw/${name}`, type: 'module', exports: { '.': './src/index.ts' } }));
    await writeFile(path.join(root, 'src', 'index.ts'), 'export const ok = 1;\n');
    await mkdir(path.join(dir, 'node_modules', '@wagw'), { recursive: true });
    await symlink(root, path.join(dir, 'node_modules', '@wagw', name), 'dir');
  }
  for (const [file, text] of Object.entries(files)) await writeFile(path.join(dir, file), text);
  return PACKAGES.map((p) => `packages/${p}/src`);
}

describe('architecture rules', () => {
  test('the real sources obey every rule', async () => {
    const base = fileURLToPath(new URL('../..', import.meta.url));
    const report = await checkArchitecture(base, PACKAGES.map((p) => `packages/${p}/src`));
    assert.deepEqual(report.violations, []);
    assert.ok(report.modules > 100, `cruised ${report.modules} modules`);
  });

  test('each rule fails when broken on purpose', async (t) => {
    const dir = (await tempDir(t)).path;
    const roots = await fixture(dir, {
      'packages/shared/src/bad.ts': "import { ok } from '@wagw/router';\nexport const a = ok;\n",
      'packages/stores/src/bad.ts': "import { ok } from '@wagw/shard';\nexport const b = ok;\n",
      'packages/router/src/bad.ts': "import { ok } from '../../shard/src/index.ts';\nexport const c = ok;\n",
      'packages/shard/src/bad.ts': "import type { ok } from '@wagw/router';\nexport type D = typeof ok;\n",
      'packages/router/src/sim.ts': "import { ok } from '@wagw/wa-sim';\nexport const e = ok;\n",
      'packages/wa-sim/src/bad.ts': "import { ok } from '@wagw/shared';\nexport const f = ok;\n",
      'packages/shared/src/cycle-a.ts': "import { b } from './cycle-b.ts';\nexport const a = () => b;\n",
      'packages/shared/src/cycle-b.ts': "import { a } from './cycle-a.ts';\nexport const b = () => a;\n",
    });
    const { violations } = await checkArchitecture(dir, roots);
    const broken = new Set(violations.map((v) => v.rule.name));
    assert.deepEqual([...broken].sort(), RULES.map((r) => r.name).sort());
    const seen = violations.map((v) => `${v.rule.name} ${v.from}`);
    assert.ok(seen.includes('shared-imports-nothing-above packages/shared/src/bad.ts'), seen.join('\n'));
    assert.ok(seen.includes('shard-not-router packages/shard/src/bad.ts'), 'a type-only import breaks the layering too');
  });

  test('a cycle through type-only imports is not a run-time cycle', async (t) => {
    const dir = (await tempDir(t)).path;
    const roots = await fixture(dir, {
      'packages/router/src/a.ts': "import type { B } from './b.ts';\nexport interface A { b?: B }\nexport const a = 1;\n",
      'packages/router/src/b.ts': "import { a } from './a.ts';\nexport interface B { n: typeof a }\n",
    });
    assert.deepEqual((await checkArchitecture(dir, roots)).violations, []);
  });
});

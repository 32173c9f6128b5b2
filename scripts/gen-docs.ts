// Regenerates the reference docs that tests keep in step with the code.
import { writeFileSync } from 'node:fs';
import { renderConfigurationDoc, renderErrorsDoc } from '../packages/shared/src/docs.ts';

const root = new URL('../', import.meta.url);
writeFileSync(new URL('docs/configuration.md', root), renderConfigurationDoc());
writeFileSync(new URL('docs/errors.md', root), renderErrorsDoc());
console.log('wrote docs/configuration.md and docs/errors.md');

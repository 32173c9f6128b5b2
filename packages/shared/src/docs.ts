/** Renders the reference docs that tests keep in step with the code (docs/configuration.md, docs/errors.md). */
import { ENV_SPEC, SECRET_VARIABLES } from './config.ts';
import { ERRORS } from './errors.ts';

export function renderConfigurationDoc(): string {
  const rows = Object.entries(ENV_SPEC).map(([name, spec]) => {
    const def = spec.default === undefined ? '(unset)' : `\`${name === 'HOST_ID' ? '<hostname>' : name === 'SHARD_COUNT' ? '<cores>' : spec.default}\``;
    return `| \`${name}\` | ${def} | ${spec.doc} |`;
  });
  return [
    '# Configuration',
    '',
    'Generated from `packages/shared/src/config.ts` by `node scripts/gen-docs.ts`; a test fails when this file',
    'and the code disagree. Only the config module reads `process.env`. Every variable is validated at start and',
    'all problems are reported at once, each with its variable name; the process then exits with status 1.',
    'Durations are milliseconds (`..._MS`).',
    '',
    `A problem never echoes a secret: ${[...SECRET_VARIABLES].map((n) => `\`${n}\``).join(', ')} are shown by their length only,`,
    'and in any other value URL user info and password-like query parameters are masked (`postgres://***@db/gw`).',
    '',
    'Aliases: `MINIO_ENDPOINT`, `MINIO_ACCESS_KEY`, `MINIO_SECRET_KEY`, `MINIO_BUCKET`, `MINIO_REGION` may be used',
    'for the `S3_*` variables of the same name.',
    '',
    '| variable | default | meaning |',
    '|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

export function renderErrorsDoc(): string {
  const rows = Object.entries(ERRORS).map(
    ([code, spec]) => `| \`${code}\` | ${spec.status} | ${spec.expose ? 'yes' : 'no'} | ${spec.message} |`,
  );
  return [
    '# Error codes',
    '',
    'Generated from `packages/shared/src/errors.ts` by `node scripts/gen-docs.ts`; a test fails when this file',
    'and the registry disagree. Every error response has the body',
    '`{"error":{"code":"SESSION_NOT_FOUND","message":"...","details":{...}}}`. Errors cross the router/shard IPC',
    'boundary as `{code, message, details?}` and are rebuilt on the other side; code is matched on `code`, never',
    'on the class. "exposed" errors show their own message; the others show the generic message and are logged.',
    '',
    '`message` is one short sentence a person can read; lists and data are in `details`, never repeated in the',
    'message. A 400 from validation (`VALIDATION_FAILED`, or `INVALID_PHONE` when every bad field is a recipient)',
    'names each bad field in `details.fields` (`[{location, field, message, code?, reason?}]`); `INVALID_PHONE` has',
    'the accepted phone number and JID formats in `details.accepted`.',
    '',
    '| code | HTTP status | exposed | meaning |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

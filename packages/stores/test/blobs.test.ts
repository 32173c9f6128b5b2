import path from 'node:path';
import { createRootLogger } from '@wagw/shared';
import { startS3, tempDir } from '../../../test/harness/index.ts';
import type { TestS3 } from '../../../test/harness/index.ts';
import { LocalBlobStore } from '../src/blobs/local.ts';
import { S3BlobStore } from '../src/blobs/s3.ts';
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { blobConformance } from './conformance/blobs.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });

blobConformance('local data directory', async (t) => {
  const dir = await tempDir(t);
  const store = await LocalBlobStore.create(path.join(dir.path, 'blobs'));
  t.after(() => store.close());
  return store;
});

// One s3rver for the file; each test gets its own bucket, created by the store.
let s3: TestS3 | undefined;
before(async () => {
  s3 = await startS3();
});
after(() => s3?.stop());

blobConformance('S3 (s3rver)', async (t) => {
  if (s3 === undefined) throw new Error('s3rver did not start');
  const store = await S3BlobStore.create({ ...s3, bucket: `wagw-test-${randomBytes(4).toString('hex')}` }, { logger });
  t.after(() => store.close());
  return store;
});

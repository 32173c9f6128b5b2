import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import { randomId, tempDir } from './util.ts';
import type { Cleanup } from './util.ts';

interface S3rverOptions {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  resetOnClose?: boolean;
  configureBuckets?: { name: string }[];
}
interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverConstructor = new (options: S3rverOptions) => S3rverInstance;

// s3rver is CommonJS without type declarations: load it through require with the small shape used here.
const require = createRequire(import.meta.url);
const S3rver = require('s3rver') as S3rverConstructor;

/** A running s3rver. The fields match GatewayConfig['s3'] so `{...s3}` can be passed as S3 config. */
export interface TestS3 {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  /** A fresh bucket name for this instance (not created: the store under test creates it). */
  bucket: string;
  region: string;
  pathStyle: true;
  /** Data directory of the server. */
  directory: string;
  stop(): Promise<void>;
}

/** Starts s3rver on a free port (the OS picks it) with its data in a temp dir. */
export async function startS3(cleanup?: Cleanup): Promise<TestS3> {
  const dir = await tempDir(undefined, 'wagw-s3rver-');
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir.path });
  let address: { port: number };
  try {
    address = await server.run();
  } catch (err) {
    await dir.remove();
    throw err;
  }
  let stopped = false;
  const handle: TestS3 = {
    endpoint: `http://127.0.0.1:${address.port}`,
    accessKey: 'S3RVER',
    secretKey: 'S3RVER',
    bucket: `wagw-test-${randomId()}`,
    region: 'us-east-1',
    pathStyle: true,
    directory: dir.path,
    async stop() {
      if (stopped) return;
      stopped = true;
      // Keep-alive sockets of the client under test would hold close() open.
      server.httpServer?.closeAllConnections();
      await server.close();
      await dir.remove();
    },
  };
  cleanup?.after(() => handle.stop());
  return handle;
}

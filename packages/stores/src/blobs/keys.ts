/**
 * Blob keys are the same for both stores: `/`-separated segments of AWS's "safe" characters
 * (A-Z a-z 0-9 ! - _ . * ' ( )) plus @ = , : ~, at most 1024 bytes. No empty, `.` or `..` segment, no
 * leading or trailing `/`. So a key is always a relative path that stays inside the local data directory,
 * needs no escaping anywhere, and means the same object on every S3 implementation (s3rver, for one,
 * lists `+` back as a space). Callers encode free-form ids (e.g. base64url) before using them in keys.
 */
export class BlobKeyError extends RangeError {
  readonly code = 'BAD_REQUEST';
  constructor(what: string, key: string, reason: string) {
    super(`Invalid blob ${what} ${JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}...` : key)}: ${reason}`);
    this.name = 'BlobKeyError';
  }
}

const ALLOWED = /^[A-Za-z0-9!\-_.*'()@=,:~/]*$/;

function checkSegments(what: string, key: string, segments: readonly string[]): void {
  for (const segment of segments) {
    if (segment === '') throw new BlobKeyError(what, key, 'empty path segment (leading, trailing or double "/")');
    if (segment === '.' || segment === '..') throw new BlobKeyError(what, key, '"." and ".." segments are not allowed');
  }
}

export function assertBlobKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new BlobKeyError('key', String(key), 'must be a non-empty string');
  if (Buffer.byteLength(key, 'utf8') > 1024) throw new BlobKeyError('key', key, 'longer than 1024 bytes');
  if (!ALLOWED.test(key)) throw new BlobKeyError('key', key, "only A-Z a-z 0-9 ! - _ . * ' ( ) @ = , : ~ and / are allowed");
  checkSegments('key', key, key.split('/'));
}

/**
 * A listing prefix: '' (everything) or any start of a valid key, e.g. `auth/s1/` or `auth/s1/pre-key-`.
 * Its complete segments (all but the text after the last `/`) follow the key rules.
 */
export function assertBlobPrefix(prefix: string): void {
  if (typeof prefix !== 'string') throw new BlobKeyError('prefix', String(prefix), 'must be a string');
  if (prefix === '') return;
  if (Buffer.byteLength(prefix, 'utf8') > 1024) throw new BlobKeyError('prefix', prefix, 'longer than 1024 bytes');
  if (!ALLOWED.test(prefix)) throw new BlobKeyError('prefix', prefix, "only A-Z a-z 0-9 ! - _ . * ' ( ) @ = , : ~ and / are allowed");
  const segments = prefix.split('/');
  const last = segments.pop() ?? '';
  checkSegments('prefix', prefix, segments);
  if (last === '..') throw new BlobKeyError('prefix', prefix, '".." segments are not allowed');
}

/** Byte-wise UTF-8 order, the order S3 lists keys in. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

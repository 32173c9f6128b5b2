export { createShardHandler } from './handler.ts';
export type { CallContext, CpuPoolLike, ReplyBatching, ShardHandler, ShardHandlerOptions, ShardHandlerState } from './handler.ts';
export { CpuPool } from './cpu-pool.ts';
export type { CpuPoolOptions } from './cpu-pool.ts';
export { QR_FORMATS, QR_MAX_MARGIN, QR_MAX_TEXT, QR_MAX_WIDTH, QR_MIN_WIDTH, validateQrTask } from './qr.ts';
export type { QrFormat, RenderQrResult, RenderQrTask } from './qr.ts';

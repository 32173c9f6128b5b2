export * from './config.ts';
export * from './errors.ts';
export * from './ipc.ts';
export * from './logger.ts';
export * from './session-state.ts';
export * from './stores.ts';
export * from './docs.ts';
export * from './webhooks.ts';

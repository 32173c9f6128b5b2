export { GatewayRouter } from './router.ts';
export type { GatewayRouterOptions, RouterStores } from './router.ts';
export { ShardSupervisor } from './supervisor.ts';
export type {
  CallOptions,
  CallOutcome,
  ShardExit,
  ShardInfo,
  ShardState,
  ShardSupervisorOptions,
  SupervisorConfig,
  SupervisorHooks,
} from './supervisor.ts';
export { Lifecycle, createApp, errorResponse, requestIdFrom } from './app.ts';
export type { AppContext, AppDeps, AppState, DependencyCheck, LifecyclePhase, ShardHealth, ShardsView } from './app.ts';
export { RouterMetrics } from './metrics.ts';
export type { RouterMetricsOptions, ShardSource } from './metrics.ts';

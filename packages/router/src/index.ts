export { GatewayRouter } from './router.ts';
export type { GatewayRouterOptions, RouterStores, SessionStores } from './router.ts';
export { composeGateway } from './compose.ts';
export type { ComposeOptions, ComposedGateway } from './compose.ts';
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
export { Lifecycle, authHookFor, createApp, errorResponse, requestIdFrom } from './app.ts';
export type { AppContext, AppDeps, AppSecurity, AppState, DependencyCheck, LifecyclePhase, ShardHealth, ShardsView } from './app.ts';
/** The security edge (authentication, scopes, rate limits, request limits, webhook URL policy). */
export * as security from './security/index.ts';
/** The webhook system (outbox, dispatcher, admin). */
export * as webhooks from './webhooks/index.ts';
/** The backend's worker-registry client. */
export * as backend from './backend/index.ts';
export { RouterMetrics } from './metrics.ts';
export type { RouterMetricsOptions, ShardSource } from './metrics.ts';
export { ExpirySweeper } from './messages/expiry.ts';
export { GroupCommit } from './messages/group-commit.ts';
export type { BulkWrite, GroupCommitOptions } from './messages/group-commit.ts';
export type { ExpirySweeperOptions, SweepResult } from './messages/expiry.ts';
export { CONSOLE_CSP, consoleRoutes, simulatorRoutes } from './api/console-routes.ts';
export type { SimulatorControl } from './api/console-routes.ts';
/** Where a draining host forwards a new session (the least-loaded live host that takes sessions). */
export { placementHost } from './sessions/placement-host.ts';

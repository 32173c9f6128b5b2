/** The backend's worker registry, seen from the router (docs/webhooks.md, "Worker registry"). */
export { createBackendClient, assignedSessionSchema, assignedSessionsResponseSchema, BackendHttpError } from './client.ts';
export type { AssignedSession, BackendClient, BackendClientOptions, WorkerLoad, WorkerRegistration } from './client.ts';

/**
 * The non-public address table lives in @wagw/shared (net-policy.ts) so the webhook transport here and the
 * shards' media fetches judge addresses with one table. Re-exported for the router's existing importers.
 */
export { isNonPublicAddress } from '@wagw/shared';

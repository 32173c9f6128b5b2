/**
 * The lease scripts. Each runs atomically inside Redis, reads Redis's own clock (TIME) so every host agrees
 * on expiry, and never touches the epoch counter except to INCR it: release and expiry leave it alone, so an
 * epoch handed out once is never handed out again.
 *
 * An epoch is max(counter + 1, Redis time in ms): strictly growing per session, and still growing after the
 * counter is lost. Lease hash fields: owner, epoch, expiresAt (ms). The hash carries a PEXPIRE equal to the TTL, so a lapsed
 * lease simply does not exist. Owner sets are sorted sets scored by expiresAt, trimmed lazily.
 */

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** Keeps an owner set alive exactly as long as its longest lease. */
const TOUCH_OWNER_SET = `
local function touchOwnerSet(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', key, last[2]) end
end
`;

/**
 * KEYS: lease, epoch, ownerSet. ARGV: owner, ttlMs, sessionId.
 * A previous owner's set may still list the session; LIST_BY_OWNER drops such stale members lazily.
 * Returns {1, epoch, expiresAt} or {0, holderOwner, holderEpoch, holderExpiresAt}.
 */
export const CLAIM = `${NOW}${TOUCH_OWNER_SET}
local cur = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'expiresAt')
if cur[1] and cur[1] ~= ARGV[1] then
  return {0, cur[1], cur[2], cur[3]}
end
local counted = redis.call('INCR', KEYS[2])
local epoch = counted
if cur[2] and tonumber(cur[2]) >= epoch then
  epoch = tonumber(cur[2]) + 1
end
-- Floor at the clock (ms): if Redis loses the counter (no persistence, failover to a stale replica), the
-- next epoch is still above every epoch handed out before, so a zombie's old epoch can never be current.
if epoch < now then
  epoch = now
end
if epoch ~= counted then
  redis.call('SET', KEYS[2], epoch)
end
local ttl = tonumber(ARGV[2])
local expiresAt = now + ttl
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'epoch', epoch, 'expiresAt', expiresAt)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[3], expiresAt, ARGV[3])
touchOwnerSet(KEYS[3])
return {1, epoch, expiresAt}
`;

/**
 * KEYS: ownerSet, lease_1..lease_n. ARGV: owner, ttlMs, epoch_1..epoch_n, sessionId_1..sessionId_n.
 * Renews every lease still held by owner at its epoch; returns the 1-based indexes of the others.
 */
export const RENEW = `${NOW}${TOUCH_OWNER_SET}
local n = #KEYS - 1
local ttl = tonumber(ARGV[2])
local expiresAt = now + ttl
local lost = {}
for i = 1, n do
  local cur = redis.call('HMGET', KEYS[i + 1], 'owner', 'epoch')
  if cur[1] == ARGV[1] and cur[2] == ARGV[2 + i] then
    redis.call('HSET', KEYS[i + 1], 'expiresAt', expiresAt)
    redis.call('PEXPIRE', KEYS[i + 1], ttl)
    redis.call('ZADD', KEYS[1], expiresAt, ARGV[2 + n + i])
  else
    lost[#lost + 1] = i
  end
end
touchOwnerSet(KEYS[1])
return lost
`;

/** KEYS: lease, ownerSet. ARGV: owner, epoch, sessionId. Returns 1 when released. */
export const RELEASE = `
local cur = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if cur[1] == ARGV[1] and cur[2] == ARGV[2] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 1
end
return 0
`;

/**
 * KEYS: ownerSet. ARGV: owner, leaseKeyPrefix, leaseKeySuffix.
 * Returns {{sessionId, epoch, expiresAt}, ...} of live leases; drops stale members from the set.
 * (Builds lease keys from the prefix: a single-instance Redis script, see docs/stores.md.)
 */
export const LIST_BY_OWNER = `
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  local cur = redis.call('HMGET', ARGV[2] .. id .. ARGV[3], 'owner', 'epoch', 'expiresAt')
  if cur[1] == ARGV[1] then
    out[#out + 1] = {id, cur[2], cur[3]}
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
`;

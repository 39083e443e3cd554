/**
 * The quota's Lua scripts. Each runs atomically in Redis, touches only keys passed in KEYS (all
 * carrying one tenant's `{prefix/tenant}` hash tag, so one Redis Cluster slot) and never computes
 * a key name itself: the TypeScript side derives day/minute window names from the clock.
 */

/**
 * reserve — KEYS: limits, tokensDay, tokensMinute, requestsMinute, inFlight (zset), reservation,
 * tokensMonth.
 * ARGV: requestId, tokens, nowMs, inFlightMaxAgeMs, dayTtlS, minuteTtlS, reservationTtlS, inFlightTtlS,
 * monthTtlS.
 * Returns {"ok"} | {"dup"} | {"unknown"} | {"limit", name, limitValue, used}.
 * Every configured window is checked before any is incremented, so a refusal charges nothing.
 */
export const RESERVE_LUA = `
local limitsKey, dayKey, minKey, reqKey, inflightKey, resKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local monthKey = KEYS[7]
local requestId = ARGV[1]
local tokens = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local maxAge = tonumber(ARGV[4])

-- A second reserve of the same request id must not charge twice.
if redis.call('EXISTS', resKey) == 1 then return {'dup'} end

local limits = redis.call('HMGET', limitsKey, 'tenant', 'tokensPerDay', 'tokensPerMinute', 'requestsPerMinute', 'concurrentRequests', 'tokensPerMonth')
if not limits[1] then return {'unknown'} end

-- In-flight entries older than maxAge belong to a process that died before settling: forget them.
redis.call('ZREMRANGEBYSCORE', inflightKey, '-inf', now - maxAge)

local function used(key)
  local v = redis.call('GET', key)
  if v then return tonumber(v) end
  return 0
end

-- Longest window first: if the day is spent, retrying next minute would not help.
local monthLimit = tonumber(limits[6])
if monthLimit then
  local u = used(monthKey)
  if u + tokens > monthLimit then return {'limit', 'tokensPerMonth', monthLimit, u} end
end
local dayLimit = tonumber(limits[2])
if dayLimit then
  local u = used(dayKey)
  if u + tokens > dayLimit then return {'limit', 'tokensPerDay', dayLimit, u} end
end
local minLimit = tonumber(limits[3])
if minLimit then
  local u = used(minKey)
  if u + tokens > minLimit then return {'limit', 'tokensPerMinute', minLimit, u} end
end
local reqLimit = tonumber(limits[4])
if reqLimit then
  local u = used(reqKey)
  if u + 1 > reqLimit then return {'limit', 'requestsPerMinute', reqLimit, u} end
end
local concLimit = tonumber(limits[5])
if concLimit then
  local u = redis.call('ZCARD', inflightKey)
  if u + 1 > concLimit then return {'limit', 'concurrentRequests', concLimit, u} end
end

-- Every window is counted (limited or not) so usage() can report it.
redis.call('INCRBY', monthKey, tokens)
redis.call('EXPIRE', monthKey, ARGV[9])
redis.call('INCRBY', dayKey, tokens)
redis.call('EXPIRE', dayKey, ARGV[5])
redis.call('INCRBY', minKey, tokens)
redis.call('EXPIRE', minKey, ARGV[6])
redis.call('INCR', reqKey)
redis.call('EXPIRE', reqKey, ARGV[6])
redis.call('ZADD', inflightKey, now, requestId)
redis.call('EXPIRE', inflightKey, ARGV[8])
redis.call('HSET', resKey, 'tokens', tokens, 'state', 'reserved', 'reservedAt', now,
  'dayKey', dayKey, 'minuteKey', minKey, 'requestsKey', reqKey, 'monthKey', monthKey)
redis.call('EXPIRE', resKey, ARGV[7])
return {'ok'}
`;

// The settle/release logic of one reservation, shared by FINISH_LUA and FINISH_MANY_LUA so both
// apply exactly the same rules. K: that reservation's six keys in FINISH_LUA's KEYS order.
const FINISH_ONE = `local function finishOne(K, mode, requestId, actual)
local resKey, dayKey, minKey, reqKey, inflightKey = K[1], K[2], K[3], K[4], K[5]

local r = redis.call('HMGET', resKey, 'state', 'tokens', 'dayKey', 'minuteKey', 'requestsKey', 'monthKey')
if not r[1] then return 'unknown' end
local released = mode == 'settle' and r[1] == 'released'
if r[1] ~= 'reserved' and not released then return 'already' end
if r[3] ~= dayKey or r[4] ~= minKey or r[5] ~= reqKey then return 'mismatch' end
if r[6] and r[6] ~= K[6] then return 'mismatch' end
-- The token windows this reservation charged (a reservation made before the month window: no month).
local tokenKeys = {dayKey, minKey}
if r[6] then table.insert(tokenKeys, K[6]) end

local reserved = tonumber(r[2])
local charged = 0
if mode == 'settle' then
  -- Charging more than was reserved could push a window past its limit: cap at the reservation.
  charged = math.max(0, math.min(tonumber(actual), reserved))
end

-- A result for a released reservation: the gateway gave up on a publish whose confirm never came,
-- yet the task reached its queue and ran. The record charges it, so the windows must too: charge
-- it and the request back into the windows still alive (the release refunded both).
if released then
  for _, key in ipairs(tokenKeys) do
    if charged > 0 and redis.call('EXISTS', key) == 1 then redis.call('INCRBY', key, charged) end
  end
  if redis.call('EXISTS', reqKey) == 1 then redis.call('INCR', reqKey) end
  redis.call('HSET', resKey, 'state', 'settled', 'charged', charged, 'actual', actual)
  return 'settled'
end

-- Refund into a window only while it still exists, and never below zero.
local function refund(key, amount)
  if amount <= 0 or redis.call('EXISTS', key) == 0 then return end
  local left = redis.call('DECRBY', key, amount)
  if left < 0 then redis.call('SET', key, 0, 'KEEPTTL') end
end

for _, key in ipairs(tokenKeys) do refund(key, reserved - charged) end
if mode == 'release' then refund(reqKey, 1) end
redis.call('ZREM', inflightKey, requestId)

local state = 'settled'
if mode == 'release' then state = 'released' end
redis.call('HSET', resKey, 'state', state, 'charged', charged, 'actual', actual)
return state
end
`;

/**
 * finish (settle or release) — KEYS: reservation, tokensDay, tokensMinute, requestsMinute, inFlight,
 * tokensMonth (any key of the tenant when the reservation predates the month window: then unused).
 * ARGV: mode ("settle" | "release"), requestId, actualTokens.
 * Returns "settled" | "released" | "already" | "unknown" | "mismatch" (KEYS are not the windows the
 * reservation charged; the caller re-reads and retries). A settle after a release charges: the
 * request ran after all.
 */
export const FINISH_LUA = `${FINISH_ONE}
return finishOne(KEYS, ARGV[1], ARGV[2], ARGV[3])
`;

/**
 * finishMany — FINISH_LUA for several reservations of one tenant in one call (one hash slot: every
 * key carries the tenant's hash tag). KEYS: six per reservation, in FINISH_LUA's order. ARGV: mode,
 * then requestId and actualTokens per reservation. Returns one FINISH_LUA reply per reservation, in
 * order; each is decided exactly as FINISH_LUA would decide it alone.
 */
export const FINISH_MANY_LUA = `${FINISH_ONE}
local out = {}
for i = 0, #KEYS / 6 - 1 do
  local k = {KEYS[i * 6 + 1], KEYS[i * 6 + 2], KEYS[i * 6 + 3], KEYS[i * 6 + 4], KEYS[i * 6 + 5], KEYS[i * 6 + 6]}
  out[i + 1] = finishOne(k, ARGV[1], ARGV[i * 2 + 2], ARGV[i * 2 + 3])
end
return out
`;

/**
 * setApiKeys — KEYS: apiKeyIndex. ARGV: tenant, then the tenant's key hashes.
 * Replaces the tenant's hashes atomically: stale ones of this tenant go, the given ones map to it.
 * An empty list removes the tenant from the index. Returns how many stale hashes were removed.
 */
export const SET_API_KEYS_LUA = `
local tenant = ARGV[1]
local keep = {}
for i = 2, #ARGV do keep[ARGV[i]] = true end
local all = redis.call('HGETALL', KEYS[1])
local removed = 0
for i = 1, #all, 2 do
  if all[i + 1] == tenant and not keep[all[i]] then
    redis.call('HDEL', KEYS[1], all[i])
    removed = removed + 1
  end
end
for i = 2, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], tenant) end
return removed
`;

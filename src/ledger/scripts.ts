/**
 * The ledger's Lua scripts. Each runs atomically, so "read state, decide,
 * write" can never interleave with another worker or a reconciler.
 * Times are passed in (ms) so that tests can drive the clock.
 */

/**
 * register — record a new key, or report what the ledger already knows.
 *
 * KEYS[1] record hash   KEYS[2] audit list   KEYS[3] due zset   KEYS[4] index zset
 * ARGV[1] now (ms)      ARGV[2] fingerprint  ARGV[3] keyId       ARGV[4] jobId
 * ARGV[5] expireAt (ms, record and audit)    ARGV[6] due score   ARGV[7] audit max length
 * ARGV[8..] payload field/value pairs
 *
 * Returns {'new'} or {'conflict'|'exists', <record as field/value pairs...>}.
 */
export const REGISTER = `
local state = redis.call('HGET', KEYS[1], 'state')
if state then
  local fp = redis.call('HGET', KEYS[1], 'fp')
  local verdict = 'exists'
  if fp ~= ARGV[2] then verdict = 'conflict' end
  local out = redis.call('HGETALL', KEYS[1])
  table.insert(out, 1, verdict)
  return out
end
local now = ARGV[1]
redis.call('HSET', KEYS[1], 'state', 'queued', 'attempt', 0, 'fp', ARGV[2], 'jobId', ARGV[4],
  'createdAt', now, 'updatedAt', now)
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
redis.call('LPUSH', KEYS[2], cjson.encode({at = tonumber(now), event = 'queued', jobId = ARGV[4]}))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[7]) - 1)
redis.call('PEXPIREAT', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[3])
redis.call('ZADD', KEYS[4], now, ARGV[3])
return {'new'}
`;

/**
 * claim — the SET NX of xactly: win the right to call X for the next attempt.
 * Only a 'queued' key that is due, before its deadline, whose account is not
 * paused nor blocked by a 429, and within its account's and the app's budget
 * can be claimed. The claim bumps the attempt number (the fencing token),
 * starts a lease and spends one unit of each budget.
 *
 * KEYS[1] record hash   KEYS[2] audit list   KEYS[3] due zset   KEYS[4] stats hash
 * KEYS[5] account budget counter (this window)  KEYS[6] app budget counter (this day)
 * KEYS[7] account block (429 until, ms)         KEYS[8] account pause (reason)
 * ARGV[1] now (ms)      ARGV[2] lease (ms)   ARGV[3] keyId   ARGV[4] jobId
 * ARGV[5] audit max length                   ARGV[6] retention (ms, from a terminal write)
 * ARGV[7] account limit per window           ARGV[8] account window end (ms)   ARGV[9] window length (ms)
 * ARGV[10] app limit per day (0 = none)      ARGV[11] app day end (ms)
 *
 * Returns {verdict, <record as field/value pairs...>}; verdict is one of
 * 'missing', 'claimed', 'early', 'expired' and 'paused' (both now failed),
 * 'throttled' (pairs end with retryAt), 'held' (claimed or ambiguous: another
 * attempt owns it), 'sent', 'failed'.
 */
export const CLAIM = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
local now = tonumber(ARGV[1])
local verdict = state
local retryAt = nil

local function fail(reason, detail)
  redis.call('HSET', KEYS[1], 'state', 'failed', 'reason', reason, 'detail', detail, 'updatedAt', ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[3])
  redis.call('HINCRBY', KEYS[4], 'final:failed:' .. reason, 1)
  redis.call('LPUSH', KEYS[2], cjson.encode({at = now, event = 'failed', reason = reason, detail = detail, jobId = ARGV[4]}))
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end

-- Spend one unit of a fixed-window budget; over budget, say when to come back.
-- With stagger, the overflow keeps counting so that jobs over the limit are
-- spread over the following windows instead of all waking together.
local function spend(key, limit, windowEnd, windowMs, stagger)
  local used = redis.call('INCR', KEYS[key])
  if used == 1 then redis.call('PEXPIREAT', KEYS[key], windowEnd + 60000) end
  if used <= limit then return nil end
  if not stagger then
    redis.call('DECR', KEYS[key])
    return windowEnd
  end
  return windowEnd + math.floor((used - limit - 1) / limit) * windowMs
end

if state == 'claimed' or state == 'ambiguous' then
  verdict = 'held'
elseif state == 'queued' then
  -- notBefore is set when a not-sent attempt was released with a backoff.
  local scheduledAt = tonumber(redis.call('HGET', KEYS[1], 'notBefore') or redis.call('HGET', KEYS[1], 'scheduledAt'))
  local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline'))
  local pause = redis.call('GET', KEYS[8])
  local block = tonumber(redis.call('GET', KEYS[7]) or '0')
  if now >= deadline then
    verdict = 'expired'
    fail('expired', 'the deadline passed before an attempt could start')
  elseif now < scheduledAt then
    verdict = 'early'
  elseif pause then
    verdict = 'paused'
    fail('account-paused', pause)
  elseif block > now then
    verdict = 'throttled'
    retryAt = block
  else
    local appLimit = tonumber(ARGV[10])
    if appLimit > 0 then retryAt = spend(6, appLimit, tonumber(ARGV[11]), 86400000, false) end
    if not retryAt then
      retryAt = spend(5, tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), true)
      if retryAt and appLimit > 0 then redis.call('DECR', KEYS[6]) end
    end
    if retryAt then
      verdict = 'throttled'
    else
      verdict = 'claimed'
      local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
      local leaseUntil = now + tonumber(ARGV[2])
      redis.call('HSET', KEYS[1], 'state', 'claimed', 'jobId', ARGV[4], 'leaseUntil', leaseUntil,
        'attemptStartedAt', ARGV[1], 'updatedAt', ARGV[1])
      redis.call('HDEL', KEYS[1], 'attemptEndedAt')
      redis.call('ZADD', KEYS[3], leaseUntil, ARGV[3])
      redis.call('LPUSH', KEYS[2], cjson.encode({at = now, event = 'claimed', attempt = attempt, jobId = ARGV[4], leaseUntil = leaseUntil}))
    end
  end
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[5]) - 1)
end
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, verdict)
if retryAt then
  redis.call('HINCRBY', KEYS[4], 'throttled', 1)
  table.insert(out, 'retryAt')
  table.insert(out, tostring(retryAt))
end
return out
`;

/**
 * settle — record what an attempt led to, fenced by its attempt number.
 * Allowed: claimed -> sent|failed|ambiguous|queued, ambiguous -> sent|failed|queued.
 * A result for another attempt, or for a key no longer in flight, is refused
 * ('stale') and only written to the audit trail.
 *
 * KEYS[1] record hash   KEYS[2] audit list   KEYS[3] due zset
 * KEYS[4] attribution of the X id (written only when the target is 'sent')
 * KEYS[5] stats hash (cluster-wide counters for metrics)
 * ARGV[1] now (ms)      ARGV[2] attempt      ARGV[3] target state   ARGV[4] keyId
 * ARGV[5] due score (for non-terminal targets)   ARGV[6] audit max length
 * ARGV[7] retention (ms, for terminal targets)   ARGV[8] number N of audit events
 * ARGV[9] number M of stats fields to increment  ARGV[10] X latency in ms to add to latency_sum_ms ('' for none)
 * ARGV[11..10+N] audit events (JSON)             ARGV[11+N..10+N+M] stats fields
 * ARGV[11+N+M..] field/value pairs to set
 *
 * Returns {'ok'|'stale'|'missing', current state, current attempt}.
 */
export const SETTLE = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', '', '0'} end
local attempt = redis.call('HGET', KEYS[1], 'attempt')
local target = ARGV[3]
local n = tonumber(ARGV[8])
local m = tonumber(ARGV[9])
local allowed = (state == 'claimed' and target ~= 'claimed') or
  (state == 'ambiguous' and (target == 'sent' or target == 'failed' or target == 'queued'))
if attempt ~= ARGV[2] or not allowed then
  redis.call('LPUSH', KEYS[2], cjson.encode({at = tonumber(ARGV[1]), event = 'stale-result',
    attempt = tonumber(ARGV[2]), target = target, currentState = state, currentAttempt = tonumber(attempt)}))
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[6]) - 1)
  return {'stale', state, attempt}
end
redis.call('HSET', KEYS[1], 'state', target, 'updatedAt', ARGV[1])
redis.call('HDEL', KEYS[1], 'leaseUntil')
for i = 11 + n + m, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = 11, 10 + n do redis.call('LPUSH', KEYS[2], ARGV[i]) end
for i = 11 + n, 10 + n + m do redis.call('HINCRBY', KEYS[5], ARGV[i], 1) end
if ARGV[10] ~= '' then redis.call('HINCRBYFLOAT', KEYS[5], 'latency_sum_ms', ARGV[10]) end
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[6]) - 1)
if target == 'sent' then
  redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[7])
end
if target == 'sent' or target == 'failed' then
  redis.call('ZREM', KEYS[3], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
else
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
end
return {'ok', target, attempt}
`;

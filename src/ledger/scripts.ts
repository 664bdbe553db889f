import { SETTLE_MOVES } from '../domain/state.js';

/**
 * The ledger's Lua scripts. Each runs atomically, so "read state, decide,
 * write" can never interleave with another worker or a reconciler.
 *
 * A record is one JSON string (decoded with cjson), its audit trail inside
 * it: one key per post keeps each transition to a GET and a SET.
 * Times are passed in (ms) so that tests can drive the clock.
 */

/** What CLAIM answers (first element of its reply). */
export const CLAIM_VERDICTS = ['missing', 'claimed', 'early', 'expired', 'paused', 'throttled', 'held', 'sent', 'failed'] as const;
/** What SETTLE answers (first element of its reply). */
export const SETTLE_VERDICTS = ['ok', 'stale', 'missing'] as const;

/** A script's verdict, checked against its list: a script and its caller that drift apart fail loudly. */
export function verdictOf<V extends string>(name: string, allowed: readonly V[], raw: unknown): V {
  if (typeof raw === 'string' && (allowed as readonly string[]).includes(raw)) return raw as V;
  throw new Error(`${name} script answered an unknown verdict: ${JSON.stringify(raw)}`);
}

/** SETTLE_MOVES as a Lua table: MOVES[from][to] == true for each allowed move. */
function luaMoves(): string {
  const rows = Object.entries(SETTLE_MOVES)
    .filter(([, to]) => to.length > 0)
    .map(([from, to]) => `  ['${from}'] = { ${to.map((t) => `['${t}'] = true`).join(', ')} }`);
  return `local MOVES = {\n${rows.join(',\n')}\n}`;
}

/** Shared helpers: append to the capped audit trail, keep the first ('queued') entry. */
const TRAIL = `
local function note(r, max, ev)
  local trail = r.trail
  trail[#trail + 1] = ev
  while #trail > max do table.remove(trail, 2) end
end
`;

/**
 * claim — the SET NX of xactly: win the right to call X for the next attempt.
 * Only a 'queued' key that is due, before its deadline, whose account is not
 * paused nor blocked by a 429, and within its account's and the app's budget
 * can be claimed. The claim bumps the attempt number (the fencing token),
 * starts a lease and spends one unit of each budget.
 *
 * KEYS[1] record (JSON)   KEYS[2] due zset   KEYS[3] stats hash
 * KEYS[4] account budget counter (this window)   KEYS[5] app budget counter (this day)
 * KEYS[6] account state hash (paused, blockedUntil)   KEYS[7] app state hash (paused, blockedUntil)
 * ARGV[1] now (ms)       ARGV[2] lease (ms)   ARGV[3] keyId   ARGV[4] jobId
 * ARGV[5] audit max length                    ARGV[6] retention (ms, from a terminal write)
 * ARGV[7] account limit per window (0 = none) ARGV[8] account window end (ms)   ARGV[9] window length (ms)
 * ARGV[10] app limit per day (0 = none)       ARGV[11] app day end (ms)
 * ARGV[12] grace after a due time before reconciliation looks for a lost job (ms)
 * ARGV[13] how long a key waits before looking again while the app is paused (ms)
 *
 * Returns {verdict, record JSON, retryAt?}; verdict is one of 'missing',
 * 'claimed', 'early', 'expired' and 'paused' (both now failed), 'throttled'
 * (with retryAt; also while the app is paused or capped), 'held' (claimed or ambiguous: another attempt owns it),
 * 'sent', 'failed'.
 */
export const CLAIM = `${TRAIL}
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing'} end
local r = cjson.decode(raw)
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[5])
local verdict = r.state
local retryAt = nil

local function fail(reason, detail)
  r.state = 'failed'; r.reason = reason; r.detail = detail; r.updatedAt = now
  note(r, max, {at = now, event = 'failed', reason = reason, detail = detail, jobId = ARGV[4]})
  redis.call('SET', KEYS[1], cjson.encode(r), 'PX', ARGV[6])
  redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('HINCRBY', KEYS[3], 'final:failed:' .. reason, 1)
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

if r.state == 'claimed' or r.state == 'ambiguous' then
  verdict = 'held'
elseif r.state == 'queued' then
  -- notBefore is set when a not-sent attempt was released with a backoff (dueAt in domain/state.ts).
  local dueAt = math.max(r.scheduledAt, r.notBefore or 0)
  local account = redis.call('HMGET', KEYS[6], 'paused', 'blockedUntil')
  local app = redis.call('HMGET', KEYS[7], 'paused', 'blockedUntil')
  local block = math.max(tonumber(account[2] or '0'), tonumber(app[2] or '0'))
  if now >= r.deadline then
    verdict = 'expired'
    if app[1] then fail('app-paused', app[1])
    else fail('expired', 'the deadline passed before an attempt could start') end
  elseif now < dueAt then
    verdict = 'early'
  elseif account[1] then
    verdict = 'paused'
    fail('account-paused', account[1])
  elseif app[1] then
    -- X refused the whole app: wait (not fail) until an operator resumes it.
    verdict = 'throttled'
    retryAt = math.min(now + tonumber(ARGV[13]), r.deadline)
  elseif block >= r.deadline then
    -- X holds the account or the app (a 24-hour or monthly cap) past the
    -- deadline: no attempt can start in time, so say so now, not at the reset.
    verdict = 'expired'
    fail('expired', 'X holds the ' .. (tonumber(app[2] or '0') >= r.deadline and 'app' or 'account') ..
      ' until ' .. string.format('%d', block) .. ' (epoch ms, when its cap resets), past the deadline')
  elseif block > now then
    verdict = 'throttled'
    retryAt = block
  else
    local appLimit = tonumber(ARGV[10])
    local limit = tonumber(ARGV[7])
    if appLimit > 0 then retryAt = spend(5, appLimit, tonumber(ARGV[11]), 86400000, false) end
    if not retryAt and limit > 0 then
      retryAt = spend(4, limit, tonumber(ARGV[8]), tonumber(ARGV[9]), true)
      if retryAt and appLimit > 0 then redis.call('DECR', KEYS[5]) end
    end
    if retryAt then
      verdict = 'throttled'
    else
      verdict = 'claimed'
      r.attempt = r.attempt + 1
      r.state = 'claimed'; r.jobId = ARGV[4]; r.leaseUntil = now + tonumber(ARGV[2])
      r.attemptStartedAt = now; r.updatedAt = now
      note(r, max, {at = now, event = 'claimed', attempt = r.attempt, jobId = ARGV[4], leaseUntil = r.leaseUntil})
      redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
      redis.call('ZADD', KEYS[2], r.leaseUntil, ARGV[3])
    end
  end
end
if retryAt then
  -- The job waits for budget: reconciliation need not look for it before then.
  redis.call('ZADD', KEYS[2], retryAt + tonumber(ARGV[12]), ARGV[3])
  redis.call('HINCRBY', KEYS[3], 'throttled', 1)
  return {verdict, raw, tostring(retryAt)}
end
if verdict == 'claimed' or verdict == 'expired' or verdict == 'paused' then return {verdict, cjson.encode(r)} end
return {verdict, raw}
`;

/**
 * settle — record what an attempt led to, fenced by its attempt number.
 * Allowed: the moves of SETTLE_MOVES (domain/state.ts), generated into the
 * script as the table MOVES: claimed -> sent|failed|ambiguous|queued,
 * ambiguous -> sent|failed|queued.
 * A result for another attempt, or for a key no longer in flight, is refused
 * ('stale') and only written to the audit trail.
 *
 * KEYS[1] record (JSON)   KEYS[2] due zset   KEYS[3] attribution of the X id (written when the target is 'sent')
 * KEYS[4] stats hash
 * ARGV[1] now (ms)      ARGV[2] attempt      ARGV[3] target state   ARGV[4] keyId
 * ARGV[5] due score (for non-terminal targets)   ARGV[6] audit max length
 * ARGV[7] retention (ms, for terminal targets)
 * ARGV[8] fields to set (JSON object)   ARGV[9] audit events (JSON array)
 * ARGV[10] X latency in ms to add to latency_sum_ms ('' for none)
 * ARGV[11..] stats fields to increment
 *
 * Returns {'ok'|'stale'|'missing', current state, current attempt}.
 */
export const SETTLE = `${TRAIL}
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing', '', '0'} end
local r = cjson.decode(raw)
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[6])
local target = ARGV[3]
${luaMoves()}
local allowed = MOVES[r.state] ~= nil and MOVES[r.state][target] == true
if tostring(r.attempt) ~= ARGV[2] or not allowed then
  note(r, max, {at = now, event = 'stale-result', attempt = tonumber(ARGV[2]), target = target,
    currentState = r.state, currentAttempt = r.attempt})
  redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
  return {'stale', r.state, tostring(r.attempt)}
end
r.state = target; r.updatedAt = now; r.leaseUntil = nil
for k, v in pairs(cjson.decode(ARGV[8])) do r[k] = v end
for _, ev in ipairs(cjson.decode(ARGV[9])) do note(r, max, ev) end
if target == 'sent' or target == 'failed' then
  redis.call('SET', KEYS[1], cjson.encode(r), 'PX', ARGV[7])
  redis.call('ZREM', KEYS[2], ARGV[4])
  if target == 'sent' then redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[7]) end
else
  redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
end
for i = 11, #ARGV do redis.call('HINCRBY', KEYS[4], ARGV[i], 1) end
if ARGV[10] ~= '' then redis.call('HINCRBY', KEYS[4], 'latency_sum_ms', ARGV[10]) end
return {'ok', target, tostring(r.attempt)}
`;

/**
 * releaseLock — compare-and-delete: give a lock back only while we hold it
 * (every lock: the reconciliation pass, the OAuth 2.0 refresh).
 *
 * KEYS[1] lock   ARGV[1] our token
 * Returns 1 when released, 0 when the lock was not ours (expired, taken over).
 */
export const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * renewLock — compare-and-extend: keep a lock for a while longer only while we hold it.
 *
 * KEYS[1] lock   ARGV[1] our token   ARGV[2] new TTL (ms)
 * Returns 1 when renewed, 0 when the lock was not ours.
 */
export const RENEW_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

import type { Budget } from '../domain/budget.js';
import { SETTLE_MOVES } from '../domain/state.js';
import type { LedgerKeys } from './keys.js';

/**
 * The ledger's Lua scripts. Each runs atomically, so "read state, decide,
 * write" can never interleave with another worker or a reconciler.
 *
 * A record is one JSON string (decoded with cjson), its audit trail inside
 * it: one key per post keeps each transition to a GET and a SET.
 * Times are passed in (ms) so that tests can drive the clock.
 */

/**
 * A script with its calling convention: `args` builds KEYS then ARGV from
 * named arguments, the one place that knows their order (the header of
 * each script lists them).
 */
export interface Script<A> {
  /** The ioredis command it is defined as. */
  readonly name: string;
  readonly keyCount: number;
  readonly lua: string;
  /** What it may answer (the first element of its reply). */
  readonly verdicts: readonly string[];
  args(keys: LedgerKeys, a: A): (string | number)[];
}

/** What CLAIM answers (first element of its reply). */
export const CLAIM_VERDICTS = ['missing', 'claimed', 'early', 'expired', 'paused', 'throttled', 'held', 'sent', 'failed', 'cancelled'] as const;
/** What SETTLE answers (first element of its reply). */
export const SETTLE_VERDICTS = ['ok', 'stale', 'missing'] as const;
/** What CANCEL, EDIT and RESCHEDULE answer; 'changed': the payload moved under an edit, plan it again. */
export const LIFECYCLE_VERDICTS = ['not-found', 'cancelled', 'cancelling', 'edited', 'rescheduled', 'in-flight', 'already-sent', 'final', 'changed'] as const;

/** A script's verdict, checked against its list: a script and its caller that drift apart fail loudly. */
export function verdictOf<V extends string>(name: string, allowed: readonly V[], raw: unknown): V {
  if (typeof raw === 'string' && (allowed as readonly string[]).includes(raw)) return raw as V;
  throw new Error(`${name} script answered an unknown verdict: ${JSON.stringify(raw)}`);
}

/**
 * SETTLE_MOVES as a Lua string: MOVES holds '|from>to|' for each allowed
 * move (a plain find on a short string; no table is built per call).
 */
function luaMoves(): string {
  const moves = Object.entries(SETTLE_MOVES).flatMap(([from, to]) => to.map((t) => `${from}>${t}`));
  return `local MOVES = '|${moves.join('|')}|'`;
}

/**
 * Shared helpers: append to the capped audit trail, keep the first
 * ('queued') entry; append one outcome event to the events stream (fields:
 * type, key, slotId, postId, account, state, attempt, at, then the event's
 * own: tweetId, reason, detail...), trimming entries older than the
 * retention by Redis' own clock (stream ids are Redis' time).
 */
const TRAIL = `
local function note(r, max, ev)
  local trail = r.trail
  trail[#trail + 1] = ev
  while #trail > max do table.remove(trail, 2) end
end
local function trimBefore(retention)
  local t = redis.call('TIME')
  return string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(retention))
end
local function emit(stream, retention, keyId, r, typ, now, extra, state)
  local f = {'type', typ, 'key', keyId, 'slotId', r.slotId, 'postId', r.postId, 'account', r.accountId,
    'state', state or r.state, 'attempt', tostring(r.attempt), 'at', string.format('%d', now)}
  if extra then for k, v in pairs(extra) do f[#f + 1] = k; f[#f + 1] = tostring(v) end end
  redis.call('XADD', stream, 'MINID', trimBefore(retention), '*', unpack(f))
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
 * KEYS[8] events stream (a claim's own failures are events)
 * ARGV[1] now (ms)       ARGV[2] lease (ms)   ARGV[3] keyId   ARGV[4] jobId
 * ARGV[5] audit max length                    ARGV[6] retention (ms, from a terminal write)
 * ARGV[7] account limit per window (0 = none) ARGV[8] account window end (ms)   ARGV[9] window length (ms)
 * ARGV[10] app limit per day (0 = none)       ARGV[11] app day end (ms)
 * ARGV[12] grace after a due time before reconciliation looks for a lost job (ms)
 * ARGV[13] how long a key waits before looking again while the app is paused (ms)
 * ARGV[14] events retention (ms)
 *
 * Returns {verdict, record JSON, retryAt?}; verdict is one of 'missing',
 * 'claimed', 'early', 'expired' and 'paused' (both now failed), 'throttled'
 * (with retryAt; also while the app is paused or capped), 'held' (claimed,
 * ambiguous or cancelling: another attempt owns it), 'sent', 'failed',
 * 'cancelled'.
 */
const CLAIM_LUA = `${TRAIL}
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing'} end
local r = cjson.decode(raw)
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[5])
local verdict = r.state
local retryAt = nil
-- What was written, encoded once: the reply carries the same string.
local written = nil

local function fail(reason, detail)
  r.state = 'failed'; r.reason = reason; r.detail = detail; r.updatedAt = now
  note(r, max, {at = now, event = 'failed', reason = reason, detail = detail, jobId = ARGV[4]})
  written = cjson.encode(r)
  redis.call('SET', KEYS[1], written, 'PX', ARGV[6])
  redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('HINCRBY', KEYS[3], 'final:failed:' .. reason, 1)
  emit(KEYS[8], ARGV[14], ARGV[3], r, 'failed', now, {reason = reason, detail = detail})
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

if r.state == 'claimed' or r.state == 'ambiguous' or r.state == 'cancelling' then
  verdict = 'held'
elseif r.state == 'queued' then
  -- notBefore is set when a not-sent attempt was released with a backoff (dueAt in domain/state.ts).
  local dueAt = math.max(r.scheduledAt, r.notBefore or 0)
  local account = redis.call('HMGET', KEYS[6], 'paused', 'blockedUntil')
  local app = redis.call('HMGET', KEYS[7], 'paused', 'blockedUntil')
  local block = math.max(tonumber(account[2] or '0'), tonumber(app[2] or '0'))
  if now >= r.deadline then
    verdict = 'expired'
    local part = r.partIndex or 0
    if app[1] then fail('app-paused', app[1])
    elseif part > 0 then fail('thread-broken', 'the deadline passed before part ' .. (part + 1) .. ' of ' .. #r.parts .. ' could start; parts 1-' .. part .. ' are live (not deleted)')
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
      written = cjson.encode(r)
      redis.call('SET', KEYS[1], written, 'KEEPTTL')
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
return {verdict, written or raw}
`;

export interface ClaimArgs {
  readonly keyId: string;
  readonly jobId: string;
  readonly accountId: string;
  readonly now: number;
  readonly leaseMs: number;
  readonly budget: Budget;
  readonly auditMax: number;
  readonly retentionMs: number;
  readonly lostJobGraceMs: number;
  readonly appPausedRecheckMs: number;
  readonly eventsRetentionMs: number;
}

export const CLAIM: Script<ClaimArgs> = {
  name: 'xactlyClaim',
  keyCount: 8,
  lua: CLAIM_LUA,
  verdicts: CLAIM_VERDICTS,
  args: (k, a) => [
    k.record(a.keyId),
    k.due,
    k.stats,
    k.budget(a.accountId, a.budget.budgetClass, a.budget.windowStart),
    k.appBudget(a.budget.dayStart),
    k.account(a.accountId),
    k.app,
    k.events,
    a.now,
    a.leaseMs,
    a.keyId,
    a.jobId,
    a.auditMax,
    a.retentionMs,
    a.budget.limit,
    a.budget.windowEnd,
    a.budget.windowMs,
    a.budget.appLimit,
    a.budget.dayEnd,
    a.lostJobGraceMs,
    a.appPausedRecheckMs,
    a.eventsRetentionMs,
  ],
};

/**
 * settle — record what an attempt led to, fenced by its attempt number.
 * The caller sends a plan with two variants: `normal`, and `cancelling` for
 * a key cancelled while the attempt was in flight (whileCancelling in
 * domain/state.ts decides it); the script takes the one that matches the
 * key's state. Allowed: the moves of SETTLE_MOVES (domain/state.ts),
 * generated into the script as the table MOVES.
 * A result for another attempt, or for a key no longer in flight, is refused
 * ('stale') and only written to the audit trail.
 *
 * KEYS[1] record (JSON)   KEYS[2] due zset   KEYS[3] attribution of the X id (written when the target is 'sent')
 * KEYS[4] stats hash   KEYS[5] events stream
 * ARGV[1] now (ms)      ARGV[2] attempt      ARGV[3] keyId   ARGV[4] audit max length
 * ARGV[5] retention (ms, for final targets)
 * ARGV[6] X latency in ms to add to latency_sum_ms ('' for none)
 * ARGV[7] the normal variant (JSON); a variant is
 *   {to = state, due = score for non-final targets, patch = fields to set,
 *    events = audit events, stats = counters to increment,
 *    attribute = whether KEYS[3] (the X id made live) is attributed to this key,
 *    emits = the outcome events, in order: {type, fields, state (when not the key's new state)}}
 * ARGV[8] events retention (ms)
 * ARGV[9] the cancelling variant (JSON; '' when it is the same as the normal one)
 *
 * Returns {'ok'|'stale'|'missing', current state, current attempt}.
 */
const SETTLE_LUA = `${TRAIL}
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing', '', '0'} end
local r = cjson.decode(raw)
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[4])
-- Only the variant that applies is decoded.
local v = cjson.decode((r.state == 'cancelling' and ARGV[9] ~= '') and ARGV[9] or ARGV[7])
local target = v.to
${luaMoves()}
if tostring(r.attempt) ~= ARGV[2] or not string.find(MOVES, '|' .. r.state .. '>' .. target .. '|', 1, true) then
  note(r, max, {at = now, event = 'stale-result', attempt = tonumber(ARGV[2]), target = target,
    currentState = r.state, currentAttempt = r.attempt})
  redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
  return {'stale', r.state, tostring(r.attempt)}
end
r.state = target; r.updatedAt = now; r.leaseUntil = nil
for k, val in pairs(v.patch) do r[k] = val end
for _, ev in ipairs(v.events) do note(r, max, ev) end
if target == 'sent' or target == 'failed' or target == 'cancelled' then
  redis.call('SET', KEYS[1], cjson.encode(r), 'PX', ARGV[5])
  redis.call('ZREM', KEYS[2], ARGV[3])
else
  redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
  redis.call('ZADD', KEYS[2], v.due, ARGV[3])
end
if v.attribute then redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[5]) end
for _, e in ipairs(v.emits) do emit(KEYS[5], ARGV[8], ARGV[3], r, e.type, now, e.fields, e.state) end
for _, field in ipairs(v.stats) do redis.call('HINCRBY', KEYS[4], field, 1) end
if ARGV[6] ~= '' then redis.call('HINCRBY', KEYS[4], 'latency_sum_ms', ARGV[6]) end
return {'ok', target, tostring(r.attempt)}
`;

/** One way a settle may go (see SETTLE). */
export interface SettleVariant {
  readonly to: string;
  readonly due: number;
  readonly patch: Record<string, unknown>;
  readonly events: readonly Record<string, unknown>[];
  readonly stats: readonly string[];
  readonly attribute: boolean;
  /** The outcome events this move writes, in order. */
  readonly emits: readonly OutcomeEmit[];
}

/** One outcome event a script writes: its type, its own fields (X id, reason...), and its state when not the key's new one. */
export interface OutcomeEmit {
  readonly type: string;
  readonly fields: Record<string, string | number>;
  readonly state?: string;
}

export interface SettleArgs {
  readonly keyId: string;
  readonly attempt: number;
  readonly now: number;
  /** The X id the transition makes live (a post, or a thread's part): attributed to this key. */
  readonly xId?: string;
  readonly normal: SettleVariant;
  /** Where the key goes if it is cancelling; absent when the same as `normal`. */
  readonly cancelling?: SettleVariant;
  readonly latencyMs?: number;
  readonly auditMax: number;
  readonly retentionMs: number;
  readonly eventsRetentionMs: number;
}

export const SETTLE: Script<SettleArgs> = {
  name: 'xactlySettle',
  keyCount: 5,
  lua: SETTLE_LUA,
  verdicts: SETTLE_VERDICTS,
  args: (k, a) => [
    k.record(a.keyId),
    k.due,
    k.attribution(a.xId ?? '-'),
    k.stats,
    k.events,
    a.now,
    a.attempt,
    a.keyId,
    a.auditMax,
    a.retentionMs,
    a.latencyMs === undefined ? '' : Math.round(a.latencyMs),
    JSON.stringify(a.normal),
    a.eventsRetentionMs,
    a.cancelling ? JSON.stringify(a.cancelling) : '',
  ],
};

/**
 * The answer of a lifecycle script about a key it did not change:
 * in flight (with attempt and start), already sent (with the X id), final
 * (with the state). Shared by cancel, edit and reschedule.
 */
const REFUSE = `
local function refuse(r, inFlight)
  if r.state == 'sent' then return {'already-sent', r.tweetId or ''} end
  if r.state == 'failed' or r.state == 'cancelled' then return {'final', r.state, r.reason or ''} end
  return {inFlight, tostring(r.attempt), tostring(r.attemptStartedAt or 0), r.state}
end
`;

/**
 * cancel — "cancelled" means it never goes out. A queued key becomes
 * cancelled at once: no claim can follow. A key with an attempt in flight
 * (claimed or ambiguous) becomes cancelling: no new attempt ever starts,
 * and the attempt in doubt resolves to sent (it had gone out) or cancelled.
 *
 * KEYS[1] record (JSON)   KEYS[2] due zset   KEYS[3] stats hash   KEYS[4] events stream
 * ARGV[1] now (ms)   ARGV[2] keyId   ARGV[3] audit max length   ARGV[4] retention (ms, final)
 * ARGV[5] the request (JSON: {at, by?, reason?})   ARGV[6] events retention (ms)
 *
 * Returns {'cancelled', jobId} | {'cancelling', attempt, attemptStartedAt, state}
 *   | {'already-sent', xId} | {'final', state, reason} | {'not-found'}.
 */
const CANCEL_LUA = `${TRAIL}${REFUSE}
local raw = redis.call('GET', KEYS[1])
if not raw then return {'not-found'} end
local r = cjson.decode(raw)
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[3])
local c = cjson.decode(ARGV[5])
if r.state == 'queued' then
  r.state = 'cancelled'; r.cancel = c; r.updatedAt = now
  note(r, max, {at = now, event = 'cancelled', by = c.by, reason = c.reason})
  redis.call('SET', KEYS[1], cjson.encode(r), 'PX', ARGV[4])
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('HINCRBY', KEYS[3], 'final:cancelled', 1)
  emit(KEYS[4], ARGV[6], ARGV[2], r, 'cancelled', now, {reason = c.reason})
  return {'cancelled', r.jobId}
end
if r.state == 'claimed' or r.state == 'ambiguous' then
  r.state = 'cancelling'; r.cancel = c; r.updatedAt = now
  note(r, max, {at = now, event = 'cancel-requested', attempt = r.attempt, by = c.by, reason = c.reason})
  redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
  emit(KEYS[4], ARGV[6], ARGV[2], r, 'cancelling', now, {reason = c.reason})
end
return refuse(r, 'cancelling')
`;

export interface CancelArgs {
  readonly keyId: string;
  readonly now: number;
  readonly by?: string;
  readonly reason?: string;
  readonly auditMax: number;
  readonly retentionMs: number;
  readonly eventsRetentionMs: number;
}

export const CANCEL: Script<CancelArgs> = {
  name: 'xactlyCancel',
  keyCount: 4,
  lua: CANCEL_LUA,
  verdicts: LIFECYCLE_VERDICTS,
  args: (k, a) => [
    k.record(a.keyId),
    k.due,
    k.stats,
    k.events,
    a.now,
    a.keyId,
    a.auditMax,
    a.retentionMs,
    JSON.stringify({ at: a.now, ...(a.by && { by: a.by }), ...(a.reason && { reason: a.reason }) }),
    a.eventsRetentionMs,
  ],
};

/**
 * change — edit or reschedule a queued key: replace fields, compare-and-set
 * on the fingerprint the caller planned from (another edit in between
 * answers 'changed': read again and plan again). Refused while an attempt
 * is in flight, and for a settled key.
 *
 * KEYS[1] record (JSON)   KEYS[2] due zset   KEYS[3] events stream
 * ARGV[1] now (ms)   ARGV[2] keyId   ARGV[3] audit max length
 * ARGV[4] the fingerprint the change was planned from
 * ARGV[5] fields to set (JSON; includes the new fingerprint)
 * ARGV[6] audit event (JSON)   ARGV[7] verdict on success ('edited' | 'rescheduled')
 * ARGV[8] new due-index score ('' to keep)   ARGV[9] new expiry (epoch ms, '' to keep)
 * ARGV[10] events retention (ms)
 *
 * Returns {verdict, jobId} | {'changed'} | {'in-flight', attempt, attemptStartedAt, state}
 *   | {'already-sent', xId} | {'final', state, reason} | {'not-found'}.
 */
const CHANGE_LUA = `${TRAIL}${REFUSE}
local raw = redis.call('GET', KEYS[1])
if not raw then return {'not-found'} end
local r = cjson.decode(raw)
if r.state ~= 'queued' then return refuse(r, 'in-flight') end
if r.fingerprint ~= ARGV[4] then return {'changed'} end
local now = tonumber(ARGV[1])
-- A null in the plan removes the field (an edit that drops a poll or a quote).
for k, val in pairs(cjson.decode(ARGV[5])) do if val == cjson.null then r[k] = nil else r[k] = val end end
r.updatedAt = now
local ev = cjson.decode(ARGV[6]); ev.at = now
note(r, tonumber(ARGV[3]), ev)
if ARGV[9] ~= '' then redis.call('SET', KEYS[1], cjson.encode(r), 'PXAT', ARGV[9])
else redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL') end
if ARGV[8] ~= '' then redis.call('ZADD', KEYS[2], ARGV[8], ARGV[2]) end
emit(KEYS[3], ARGV[10], ARGV[2], r, ARGV[7], now, ARGV[7] == 'rescheduled' and {scheduledAt = string.format('%d', r.scheduledAt), deadline = string.format('%d', r.deadline)} or nil)
return {ARGV[7], r.jobId}
`;

export interface ChangeArgs {
  readonly keyId: string;
  readonly now: number;
  readonly expectedFingerprint: string;
  readonly set: Record<string, unknown>;
  readonly event: Record<string, unknown>;
  readonly verdict: 'edited' | 'rescheduled';
  readonly dueScore?: number;
  readonly expireAt?: number;
  readonly auditMax: number;
  readonly eventsRetentionMs: number;
}

export const CHANGE: Script<ChangeArgs> = {
  name: 'xactlyChange',
  keyCount: 3,
  lua: CHANGE_LUA,
  verdicts: LIFECYCLE_VERDICTS,
  args: (k, a) => [
    k.record(a.keyId),
    k.due,
    k.events,
    a.now,
    a.keyId,
    a.auditMax,
    a.expectedFingerprint,
    JSON.stringify(a.set),
    JSON.stringify(a.event),
    a.verdict,
    a.dueScore ?? '',
    a.expireAt ?? '',
    a.eventsRetentionMs,
  ],
};

/**
 * register — a new key's record, or the existing one back (never
 * overwritten), and the `queued` event for a new one.
 *
 * KEYS[1] record (JSON)   KEYS[2] events stream
 * ARGV[1] the record (JSON)   ARGV[2] expiry (epoch ms)   ARGV[3] keyId
 * ARGV[4] now (ms)   ARGV[5] events retention (ms)
 * ARGV[6] slotId   ARGV[7] postId   ARGV[8] accountId (the event's fields: the record is not decoded)
 *
 * Returns the record that was there (nil: this one is new).
 */
const REGISTER_LUA = `${TRAIL}
local prev = redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2], 'NX', 'GET')
if prev then return prev end
emit(KEYS[2], ARGV[5], ARGV[3], {slotId = ARGV[6], postId = ARGV[7], accountId = ARGV[8], state = 'queued', attempt = 0}, 'queued', tonumber(ARGV[4]), nil)
return false
`;

export interface RegisterArgs {
  readonly keyId: string;
  readonly slotId: string;
  readonly postId: string;
  readonly accountId: string;
  readonly stored: string;
  readonly expireAt: number;
  readonly now: number;
  readonly eventsRetentionMs: number;
}

export const REGISTER: Script<RegisterArgs> = {
  name: 'xactlyRegister',
  keyCount: 2,
  lua: REGISTER_LUA,
  verdicts: [],
  args: (k, a) => [k.record(a.keyId), k.events, a.stored, a.expireAt, a.keyId, a.now, a.eventsRetentionMs, a.slotId, a.postId, a.accountId],
};

/**
 * standing — set or clear a field of an account's (or the app's) state
 * hash, and write the event when it changed: account paused / resumed,
 * rate-limited (until when).
 *
 * KEYS[1] the state hash   KEYS[2] events stream
 * ARGV[1] 'set' | 'del'   ARGV[2] field   ARGV[3] value (for 'set')   ARGV[4] event type
 * ARGV[5] account id ('' for the app)   ARGV[6] now (ms)   ARGV[7] events retention (ms)
 *
 * Returns 1 when the hash changed, 0 when it already was so.
 */
const STANDING_LUA = `${TRAIL}
local changed = 0
if ARGV[1] == 'set' then
  if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[3] then redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]); changed = 1 end
else
  changed = redis.call('HDEL', KEYS[1], ARGV[2])
end
if changed == 1 then
  local f = {'type', ARGV[4], 'at', ARGV[6]}
  if ARGV[5] ~= '' then f[#f + 1] = 'account'; f[#f + 1] = ARGV[5] end
  if ARGV[1] == 'set' then f[#f + 1] = ARGV[2] == 'paused' and 'reason' or 'until'; f[#f + 1] = ARGV[3] end
  redis.call('XADD', KEYS[2], 'MINID', trimBefore(ARGV[7]), '*', unpack(f))
end
return changed
`;

export interface StandingArgs {
  /** The account, or undefined for the app. */
  readonly accountId?: string;
  readonly op: 'set' | 'del';
  readonly field: 'paused' | 'blockedUntil';
  readonly value?: string;
  readonly event: 'account-paused' | 'account-resumed' | 'rate-limited' | 'app-paused' | 'app-resumed' | 'app-rate-limited';
  readonly now: number;
  readonly eventsRetentionMs: number;
}

export const STANDING: Script<StandingArgs> = {
  name: 'xactlyStanding',
  keyCount: 2,
  lua: STANDING_LUA,
  verdicts: [],
  args: (k, a) => [
    a.accountId === undefined ? k.app : k.account(a.accountId),
    k.events,
    a.op,
    a.field,
    a.value ?? '',
    a.event,
    a.accountId ?? '',
    a.now,
    a.eventsRetentionMs,
  ],
};

/**
 * note — append events to a key's audit trail without a transition (media
 * uploaded before a claim that then did not go through: the upload is still
 * told). The record keeps its TTL.
 *
 * KEYS[1] record (JSON)
 * ARGV[1] now (ms)   ARGV[2] audit max length   ARGV[3] events (JSON array; each gets at = now)
 *
 * Returns {'ok'|'missing'}.
 */
const NOTE_LUA = `${TRAIL}
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing'} end
local r = cjson.decode(raw)
local now = tonumber(ARGV[1])
for _, ev in ipairs(cjson.decode(ARGV[3])) do
  ev.at = now
  note(r, tonumber(ARGV[2]), ev)
end
redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
return {'ok'}
`;

export interface NoteArgs {
  readonly keyId: string;
  readonly now: number;
  readonly auditMax: number;
  readonly events: readonly Record<string, unknown>[];
}

export const NOTE: Script<NoteArgs> = {
  name: 'xactlyNote',
  keyCount: 1,
  lua: NOTE_LUA,
  verdicts: ['ok', 'missing'],
  args: (k, a) => [k.record(a.keyId), a.now, a.auditMax, JSON.stringify(a.events)],
};

/** Every script the ledger defines on its connection. */
export const LEDGER_SCRIPTS = [CLAIM, SETTLE, CANCEL, CHANGE, REGISTER, STANDING, NOTE] as const;

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

// ---------------------------------------------------------------------------
// Webhooks (src/webhooks/). Per URL (by its id): a state hash (the intake
// cursor), an entries hash (the events it still owes, copied out of the
// stream so trimming cannot take them), a due zset (pending entries by when
// to try next; while a try is in flight, when its lease ends) and a dead zset
// (dead-lettered entries by when they died).

/** What WEBHOOK_SETTLE answers. */
export const WEBHOOK_SETTLE_VERDICTS = ['ok', 'stale', 'gone'] as const;

/**
 * webhookIntake — take the events a URL has not seen yet out of the stream
 * (those its filters pass become pending entries, due now) and move its
 * cursor past them, in one step, so that deliverers in several processes
 * never take the same event twice. Events the stream dropped (trimmed by
 * age) before the URL took them are counted as skipped: the stream is only
 * ever trimmed from its head, so the entries lost are those between the
 * URL's position (how many entries it has seen, the stream's own count) and
 * the number the stream deleted (entries-added − length).
 *
 * KEYS[1] events stream   KEYS[2] URL state hash (cursor, pos, skipped)   KEYS[3] entries hash
 * KEYS[4] due zset   KEYS[5] webhook stats hash
 * ARGV[1] now (ms)   ARGV[2] most entries to take   ARGV[3] where a URL with no cursor starts: 'now' | 'oldest'
 * ARGV[4] event types to pass, comma-separated ('' = all)
 * ARGV[5] accounts to pass, comma-separated ('' = all; events of no account, the app's, always pass)
 * ARGV[6] the URL's host (the stats label)
 *
 * Returns {taken, queued, skipped, cursor, skippedFrom, skippedTo}: entries read, of which pending
 * now, entries lost to trimming (and the ids around the gap: the cursor before it, the first entry after).
 */
const WEBHOOK_INTAKE_LUA = `
local function set(list)
  if list == '' then return nil end
  local s = {}
  for v in string.gmatch(list, '[^,]+') do s[v] = true end
  return s
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  -- No event yet: whatever comes is after 'now'.
  if redis.call('HSETNX', KEYS[2], 'cursor', '0-0') == 1 then redis.call('HSET', KEYS[2], 'pos', 0) end
  return {0, 0, 0, redis.call('HGET', KEYS[2], 'cursor'), '', ''}
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local s = {}
for i = 1, #info, 2 do s[info[i]] = info[i + 1] end
local added = tonumber(s['entries-added'])
local deleted = added - tonumber(s['length'])
local st = redis.call('HMGET', KEYS[2], 'cursor', 'pos')
local cursor, pos = st[1], tonumber(st[2] or '0')
if not cursor or pos > added then
  -- A new URL (or a stream that was deleted and began again).
  if ARGV[3] == 'oldest' or cursor then cursor = '0-0'; pos = deleted
  else cursor = s['last-generated-id']; pos = added end
end
local skipped, skippedFrom = 0, ''
if pos < deleted then skipped = deleted - pos; skippedFrom = cursor; pos = deleted end
local now = tonumber(ARGV[1])
local types, accounts = set(ARGV[4]), set(ARGV[5])
local batch = redis.call('XRANGE', KEYS[1], '(' .. cursor, '+', 'COUNT', ARGV[2])
local queued = 0
for _, entry in ipairs(batch) do
  local id, flat = entry[1], entry[2]
  local f = {}
  for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
  pos = pos + 1; cursor = id
  if (not types or types[f.type]) and (not accounts or not f.account or accounts[f.account]) then
    redis.call('HSET', KEYS[3], id, cjson.encode({f = f, tries = 0}))
    redis.call('ZADD', KEYS[4], 'NX', now, id)
    queued = queued + 1
  end
end
redis.call('HSET', KEYS[2], 'cursor', cursor, 'pos', pos)
if skipped > 0 then
  redis.call('HINCRBY', KEYS[2], 'skipped', skipped)
  redis.call('HINCRBY', KEYS[5], 'skipped:' .. ARGV[6], skipped)
end
local skippedTo = ''
if skipped > 0 and #batch > 0 then skippedTo = batch[1][1] end
return {#batch, queued, skipped, cursor, skippedFrom, skippedTo}
`;

export interface WebhookIntakeArgs {
  readonly urlId: string;
  readonly host: string;
  readonly now: number;
  readonly max: number;
  readonly start: 'now' | 'oldest';
  readonly types: readonly string[] | undefined;
  readonly accounts: readonly string[] | undefined;
}

export const WEBHOOK_INTAKE: Script<WebhookIntakeArgs> = {
  name: 'xactlyWebhookIntake',
  keyCount: 5,
  lua: WEBHOOK_INTAKE_LUA,
  verdicts: [],
  args: (k, a) => [
    k.events,
    k.webhookState(a.urlId),
    k.webhookEntries(a.urlId),
    k.webhookDue(a.urlId),
    k.webhookStats,
    a.now,
    a.max,
    a.start,
    a.types?.join(',') ?? '',
    a.accounts?.join(',') ?? '',
    a.host,
  ],
};

/**
 * webhookClaim — take up to N due entries of a URL for a try: each one's
 * try count goes up (the fencing token of that try) and its due time moves
 * to the end of a lease, so no other deliverer takes it while the try is in
 * flight, and any deliverer takes it once the lease ends without a result
 * (its process died).
 *
 * KEYS[1] entries hash   KEYS[2] due zset
 * ARGV[1] now (ms)   ARGV[2] lease (ms)   ARGV[3] most entries to take
 *
 * Returns {next due time ('' when nothing else is pending), id1, entry1 (JSON), id2, entry2, ...}.
 */
const WEBHOOK_CLAIM_LUA = `
local now = tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {''}
for _, id in ipairs(ids) do
  local raw = redis.call('HGET', KEYS[1], id)
  if raw then
    local e = cjson.decode(raw)
    e.tries = e.tries + 1; e.triedAt = now
    raw = cjson.encode(e)
    redis.call('HSET', KEYS[1], id, raw)
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
    out[#out + 1] = id; out[#out + 1] = raw
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
local nextDue = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if nextDue[2] then out[1] = nextDue[2] end
return out
`;

export interface WebhookClaimArgs {
  readonly urlId: string;
  readonly now: number;
  readonly leaseMs: number;
  readonly max: number;
}

export const WEBHOOK_CLAIM: Script<WebhookClaimArgs> = {
  name: 'xactlyWebhookClaim',
  keyCount: 2,
  lua: WEBHOOK_CLAIM_LUA,
  verdicts: [],
  args: (k, a) => [k.webhookEntries(a.urlId), k.webhookDue(a.urlId), a.now, a.leaseMs, a.max],
};

/**
 * webhookSettle — record how a try went. Delivered: the entry is done
 * (whichever try it was: a late answer of a try whose lease was taken over
 * counts too, and a second answer finds nothing left: 'gone'). A failed try
 * counts only while it is still the entry's latest try (its fencing token)
 * and the entry is pending: then the entry is due again at `retryAt`, or
 * moves to the dead-letter list.
 *
 * KEYS[1] entries hash   KEYS[2] due zset   KEYS[3] dead zset   KEYS[4] URL state hash
 * KEYS[5] webhook stats hash   KEYS[6] recent outcomes list
 * ARGV[1] event id   ARGV[2] the try (its count, from the claim)   ARGV[3] 'delivered' | 'retry' | 'dead'
 * ARGV[4] now (ms)   ARGV[5] retryAt (ms, for 'retry')   ARGV[6] what went wrong ('' when delivered)
 * ARGV[7] the URL's host (the stats label)   ARGV[8] how many recent outcomes to keep
 * ARGV[9] HTTP status (0 when there was no answer)   ARGV[10] how long the try took (ms)
 *
 * Returns 'ok', 'stale' (a failed try that is no longer the latest) or 'gone' (nothing owed for this id).
 */
const WEBHOOK_SETTLE_LUA = `
local id, outcome, now = ARGV[1], ARGV[3], tonumber(ARGV[4])
local raw = redis.call('HGET', KEYS[1], id)
if not raw then return 'gone' end
local e = cjson.decode(raw)
local recent = {id = id, type = e.f.type, at = now, try = tonumber(ARGV[2]), outcome = outcome, status = tonumber(ARGV[9]), ms = tonumber(ARGV[10])}
if outcome == 'delivered' then
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('HINCRBY', KEYS[4], 'delivered', 1)
  redis.call('HINCRBY', KEYS[5], 'delivered:' .. ARGV[7], 1)
else
  if tostring(e.tries) ~= ARGV[2] or not redis.call('ZSCORE', KEYS[2], id) then return 'stale' end
  e.error = ARGV[6]; recent.error = ARGV[6]
  if outcome == 'retry' then
    redis.call('ZADD', KEYS[2], ARGV[5], id)
    redis.call('HINCRBY', KEYS[4], 'retried', 1)
    redis.call('HINCRBY', KEYS[5], 'retried:' .. ARGV[7], 1)
  else
    e.deadAt = now
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[3], now, id)
    redis.call('HINCRBY', KEYS[4], 'dead', 1)
    redis.call('HINCRBY', KEYS[5], 'dead:' .. ARGV[7], 1)
  end
  redis.call('HSET', KEYS[1], id, cjson.encode(e))
end
redis.call('LPUSH', KEYS[6], cjson.encode(recent))
redis.call('LTRIM', KEYS[6], 0, tonumber(ARGV[8]) - 1)
return 'ok'
`;

export interface WebhookSettleArgs {
  readonly urlId: string;
  readonly host: string;
  readonly eventId: string;
  readonly tries: number;
  readonly outcome: 'delivered' | 'retry' | 'dead';
  readonly now: number;
  readonly retryAt?: number;
  readonly error?: string;
  readonly status: number;
  readonly ms: number;
  readonly recentMax: number;
}

export const WEBHOOK_SETTLE: Script<WebhookSettleArgs> = {
  name: 'xactlyWebhookSettle',
  keyCount: 6,
  lua: WEBHOOK_SETTLE_LUA,
  verdicts: WEBHOOK_SETTLE_VERDICTS,
  args: (k, a) => [
    k.webhookEntries(a.urlId),
    k.webhookDue(a.urlId),
    k.webhookDead(a.urlId),
    k.webhookState(a.urlId),
    k.webhookStats,
    k.webhookRecent(a.urlId),
    a.eventId,
    a.tries,
    a.outcome,
    a.now,
    a.retryAt ?? 0,
    a.error ?? '',
    a.host,
    a.recentMax,
    a.status,
    a.ms,
  ],
};

/**
 * webhookRetry — put dead-lettered entries back: pending, due now, with a
 * fresh count of tries. Ids that are not dead-lettered are left alone.
 *
 * KEYS[1] entries hash   KEYS[2] due zset   KEYS[3] dead zset
 * ARGV[1] now (ms)   ARGV[2..] event ids
 *
 * Returns how many were put back.
 */
const WEBHOOK_RETRY_LUA = `
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local raw = redis.call('HGET', KEYS[1], id)
  if raw and redis.call('ZSCORE', KEYS[3], id) then
    local e = cjson.decode(raw)
    e.tries = 0; e.deadAt = nil; e.retried = (e.retried or 0) + 1
    redis.call('HSET', KEYS[1], id, cjson.encode(e))
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZADD', KEYS[2], ARGV[1], id)
    n = n + 1
  end
end
return n
`;

export interface WebhookRetryArgs {
  readonly urlId: string;
  readonly now: number;
  readonly eventIds: readonly string[];
}

export const WEBHOOK_RETRY: Script<WebhookRetryArgs> = {
  name: 'xactlyWebhookRetry',
  keyCount: 3,
  lua: WEBHOOK_RETRY_LUA,
  verdicts: [],
  args: (k, a) => [k.webhookEntries(a.urlId), k.webhookDue(a.urlId), k.webhookDead(a.urlId), a.now, ...a.eventIds],
};

/** Every script the webhook store defines on its connection. */
export const WEBHOOK_SCRIPTS = [WEBHOOK_INTAKE, WEBHOOK_CLAIM, WEBHOOK_SETTLE, WEBHOOK_RETRY] as const;

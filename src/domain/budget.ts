import type { PostKind } from './request.js';

/**
 * Publishing budgets, in fixed windows shared by every worker process. X
 * limits POST /2/tweets to 100 per 15 min per user and DMs separately; the
 * app as a whole has a daily cap. Posts and replies share one budget.
 */
export interface BudgetPolicy {
  readonly post: number;
  readonly dm: number;
  readonly windowMs: number;
  /** Posts + DMs per UTC day for the whole app; 0 = no cap. */
  readonly appDaily: number;
}

export const DEFAULT_BUDGET: BudgetPolicy = Object.freeze({ post: 100, dm: 200, windowMs: 15 * 60_000, appDaily: 10_000 });

export interface AccountLimits {
  readonly post?: number;
  readonly dm?: number;
}

export interface Budget {
  readonly budgetClass: 'post' | 'dm';
  readonly limit: number;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly windowMs: number;
  readonly appLimit: number;
  readonly dayStart: number;
  readonly dayEnd: number;
}

const DAY_MS = 86_400_000;

export function budgetFor(kind: PostKind, now: number, policy: BudgetPolicy, account: AccountLimits = {}): Budget {
  const budgetClass = kind === 'dm' ? 'dm' : 'post';
  const windowStart = Math.floor(now / policy.windowMs) * policy.windowMs;
  const dayStart = Math.floor(now / DAY_MS) * DAY_MS;
  return {
    budgetClass,
    limit: account[budgetClass] ?? policy[budgetClass],
    windowStart,
    windowEnd: windowStart + policy.windowMs,
    windowMs: policy.windowMs,
    appLimit: policy.appDaily,
    dayStart,
    dayEnd: dayStart + DAY_MS,
  };
}

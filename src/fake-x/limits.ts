/**
 * Volume limits as X reports and enforces them: the 15-minute rate-limit
 * headers per user and endpoint (reported, never enforced: real 429s come
 * from faults), and the caps on creates, per UTC day for a user and for the
 * app (`x-*-limit-24hour-*` headers) and per UTC month for the app.
 */
import { tooManyRequests, usageCapped, type HttpProblem } from './problems.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const RATE_WINDOW_MS = 15 * 60 * 1000;

export interface CapOptions {
  /** Creates per user per UTC day (default 100,000). */
  userDailyCap?: number;
  /** Creates per UTC day for the app (default 1,000,000). */
  appDailyCap?: number;
  /** Creates per UTC month for the app (default: no cap). */
  monthlyCap?: number;
}

interface Count {
  period: number;
  used: number;
}

export interface CapVerdict {
  headers: Record<string, string>;
  /** Set when the create is over a cap (and was not counted). */
  refused?: HttpProblem;
}

export class Limits {
  private readonly windows = new Map<string, Count>();
  private readonly daily = new Map<string, Count>();
  private readonly monthly: Count = { period: -1, used: 0 };
  private readonly userLimit: number;
  private readonly appLimit: number;
  private readonly monthlyCap: number | undefined;

  constructor(caps: CapOptions) {
    this.userLimit = caps.userDailyCap ?? 100_000;
    this.appLimit = caps.appDailyCap ?? 1_000_000;
    this.monthlyCap = caps.monthlyCap;
  }

  /** Count one request against `key`'s 15-minute window and report it. */
  rateHeaders(key: string, limit: number, now: number): Record<string, string> {
    const start = Math.floor(now / RATE_WINDOW_MS) * RATE_WINDOW_MS;
    const w = current(this.windows, key, start);
    w.used++;
    // Never report 0 left: the fake doesn't enforce limits, and a client that
    // honours "0 remaining" would otherwise sleep out a 15-minute window.
    const remaining = Math.max(1, limit - w.used);
    return {
      'x-rate-limit-limit': String(limit),
      'x-rate-limit-remaining': String(remaining),
      'x-rate-limit-reset': String(Math.floor((start + RATE_WINDOW_MS) / 1000)),
    };
  }

  /** Spend one create of `userId` on the daily and monthly caps, unless one is used up. */
  spendCaps(userId: string, now: number): CapVerdict {
    const day = Math.floor(now / DAY_MS);
    const user = current(this.daily, `user:${userId}`, day);
    const app = current(this.daily, 'app', day);
    const month = this.currentMonth(now);
    const userOver = user.used >= this.userLimit;
    const appOver = app.used >= this.appLimit;
    const monthOver = this.monthlyCap !== undefined && month.used >= this.monthlyCap;
    const over = userOver || appOver || monthOver;
    if (!over) {
      user.used++;
      app.used++;
      month.used++;
    }
    const dayReset = String((day + 1) * (DAY_MS / 1000));
    const headers = {
      'x-user-limit-24hour-limit': String(this.userLimit),
      'x-user-limit-24hour-remaining': String(Math.max(0, this.userLimit - user.used)),
      'x-user-limit-24hour-reset': dayReset,
      'x-app-limit-24hour-limit': String(this.appLimit),
      'x-app-limit-24hour-remaining': String(Math.max(0, this.appLimit - app.used)),
      'x-app-limit-24hour-reset': dayReset,
    };
    if (!over) return { headers };
    // Only the monthly cap alone is X's `usage-capped` problem; a daily cap is a plain 429.
    return { headers, refused: monthOver && !userOver && !appOver ? usageCapped() : tooManyRequests() };
  }

  private currentMonth(now: number): Count {
    const d = new Date(now);
    const month = d.getUTCFullYear() * 12 + d.getUTCMonth();
    if (this.monthly.period !== month) Object.assign(this.monthly, { period: month, used: 0 });
    return this.monthly;
  }
}

/** The counter of `key` for `period`, reset when the period moved on. */
function current(counts: Map<string, Count>, key: string, period: number): Count {
  let c = counts.get(key);
  if (!c || c.period !== period) counts.set(key, (c = { period, used: 0 }));
  return c;
}

/**
 * Kong's fixed rate-limiting windows, aligned to the clock in UTC: a minute window starts at
 * :00 seconds, a month window on the 1st, a year window on January 1st.
 */
export const WINDOWS = ["second", "minute", "hour", "day", "month", "year"] as const;
export type Window = (typeof WINDOWS)[number];

const FIXED: Partial<Record<Window, number>> = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** Kong's window lengths (s), which order windows of equal remaining count in the headers. */
export const WINDOW_SECONDS: Record<Window, number> = { second: 1, minute: 60, hour: 3600, day: 86_400, month: 2_592_000, year: 31_536_000 };

/** `X-RateLimit-Limit-Minute`: the window's name as Kong capitalises it. */
export const TITLE: Record<Window, string> = { second: "Second", minute: "Minute", hour: "Hour", day: "Day", month: "Month", year: "Year" };

/** Start and end (epoch ms) of the `window` containing `now`. */
export function period(window: Window, now: number): { readonly start: number; readonly end: number } {
  const length = FIXED[window];
  if (length !== undefined) {
    const start = now - (now % length);
    return { start, end: start + length };
  }
  const d = new Date(now);
  if (window === "month")
    return { start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
  return { start: Date.UTC(d.getUTCFullYear(), 0, 1), end: Date.UTC(d.getUTCFullYear() + 1, 0, 1) };
}

/**
 * Counts events per key (a client address) in fixed windows: what the download server and the
 * PKI routes limit requests and failed guesses with. Bounded: past 10,000 keys, ended windows go.
 *
 * @module window-counter
 */
export class WindowCounter {
  readonly #windows = new Map<string, { count: number; reset: number }>();
  constructor(private readonly windowMs: number) {}

  /** Counts one event for `key` at `now` (ms); returns the count in its window. */
  hit(key: string, now: number): number {
    const w = this.#windows.get(key);
    if (!w || w.reset < now) {
      this.#windows.set(key, { count: 1, reset: now + this.windowMs });
      if (this.#windows.size > 10_000) for (const [k, v] of this.#windows) if (v.reset < now) this.#windows.delete(k);
      return 1;
    }
    return ++w.count;
  }

  /** The count of `key`'s current window, and when it ends; undefined when none is open at `now`. */
  peek(key: string, now: number): { count: number; reset: number } | undefined {
    const w = this.#windows.get(key);
    return w && w.reset >= now ? w : undefined;
  }
}

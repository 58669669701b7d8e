/**
 * Requests per minute, tokens per second and time to first token over the last hours, from the
 * `requests` records. A page view never scans them: one process-wide view reads only the records
 * updated since its last read (an indexed range on `updatedAt`), keeps one small entry per
 * completed request inside the window, and is re-read at most every few seconds.
 */
import type { Collection, Db } from 'mongodb';
import { store, type RequestDocument } from '../../store/index.ts';

/** The span the plots show. */
export const seriesWindowMs = 6 * 60 * 60_000;
export const seriesStepMs = 60_000;
/** A view younger than this is served as it is. */
const staleAfterMs = 3_000;

interface Served {
  /** When the answer was complete, ms since epoch. */
  at: number;
  tokens: number;
  ttftMs: number;
}

/** Column arrays, uPlot's shape: one entry per minute, oldest first. */
export interface RequestSeries {
  /** Minute starts, unix seconds. */
  t: number[];
  requestsPerMinute: number[];
  tokensPerSecond: number[];
  /** Mean time to first token of the minute's requests; null in a minute without any. */
  ttftMs: (number | null)[];
}

export class RequestSeriesView {
  private readonly requests: Collection<RequestDocument>;
  private readonly served = new Map<string, Served>();
  /** The newest `updatedAt` read; the next read starts there (inclusive: ties are re-read, not lost). */
  private cursor: Date | undefined;
  private readAt = 0;
  private reading: Promise<void> | undefined;

  constructor(
    db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.requests = store(db).requests;
  }

  /** The series at `now`, re-read first when the view is stale; concurrent callers share one read. */
  async series(): Promise<RequestSeries> {
    if (this.now() - this.readAt > staleAfterMs) {
      this.reading ??= this.read().finally(() => (this.reading = undefined));
      await this.reading;
    }
    return this.bucket();
  }

  private async read(): Promise<void> {
    const startedAt = this.now();
    const since = this.cursor ?? new Date(startedAt - seriesWindowMs);
    const records = this.requests.find(
      // A record is rewritten when its spot check ends: keyed by id, reading it again only overwrites.
      { updatedAt: { $gte: since }, status: 'completed' },
      { projection: { createdAt: 1, updatedAt: 1, 'usage.completionTokens': 1, 'timings.timeToFirstTokenMs': 1, 'timings.totalMs': 1 } },
    );
    for await (const r of records) {
      if (r.updatedAt && (!this.cursor || r.updatedAt > this.cursor)) this.cursor = r.updatedAt;
      if (!r.timings || !r.createdAt) continue;
      this.served.set(r._id, {
        at: r.createdAt.getTime() + (r.timings.totalMs ?? 0),
        tokens: r.usage?.completionTokens ?? 0,
        ttftMs: r.timings.timeToFirstTokenMs ?? 0,
      });
    }
    this.cursor ??= since;
    const oldest = startedAt - seriesWindowMs - seriesStepMs;
    for (const [id, s] of this.served) if (s.at < oldest) this.served.delete(id);
    this.readAt = startedAt;
  }

  private bucket(): RequestSeries {
    const end = this.now() - (this.now() % seriesStepMs);
    const steps = seriesWindowMs / seriesStepMs;
    const first = end - (steps - 1) * seriesStepMs;
    const count = new Array<number>(steps).fill(0);
    const tokens = new Array<number>(steps).fill(0);
    const ttft = new Array<number>(steps).fill(0);
    for (const s of this.served.values()) {
      const i = Math.floor((s.at - first) / seriesStepMs);
      if (i < 0 || i >= steps) continue;
      count[i]!++;
      tokens[i]! += s.tokens;
      ttft[i]! += s.ttftMs;
    }
    return {
      t: count.map((_, i) => (first + i * seriesStepMs) / 1000),
      requestsPerMinute: count,
      tokensPerSecond: tokens.map((n) => Math.round((n / (seriesStepMs / 1000)) * 100) / 100),
      ttftMs: ttft.map((sum, i) => (count[i] ? Math.round(sum / count[i]) : null)),
    };
  }
}

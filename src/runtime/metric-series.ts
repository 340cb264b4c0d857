/**
 * Metrics whose series the caller holds. prom-client's labelled children
 * (`histogram.labels(...)`, `counter.labels(...)`) still validate and hash their
 * labels on every observe() and inc(), which profiles put at 4–5% of the host's
 * CPU on the hook path; here a label set is resolved to a series object once,
 * and a call only counts into it. Both classes register in a prom-client
 * Registry as its own metrics do (name, help, type, get(), reset()), so
 * /metrics reads the same.
 */
import type { Metric, Registry } from 'prom-client';

/** One histogram series: what a call observes into. */
export interface HistogramSeries {
  observe(seconds: number): void;
}

/** One counter series: what a call counts into. */
export interface CounterSeries {
  inc(by?: number): void;
}

/** A value line as prom-client's Registry formats it. */
interface ValueLine {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

class HistogramCell implements HistogramSeries {
  sum = 0;
  count = 0;
  /** Observations per bound, not cumulative: the bound index the value fell in. */
  readonly inBucket: number[];

  constructor(
    readonly labels: Record<string, string>,
    private readonly bounds: readonly number[],
  ) {
    this.inBucket = bounds.map(() => 0);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]) {
        this.inBucket[i]++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }

  zero(): void {
    this.sum = 0;
    this.count = 0;
    this.inBucket.fill(0);
  }
}

class CounterCell implements CounterSeries {
  value = 0;

  constructor(readonly labels: Record<string, string>) {}

  inc(by = 1): void {
    this.value += by;
  }

  zero(): void {
    this.value = 0;
  }
}

/** The series of one metric by label set, and what every metric tells the Registry. */
abstract class SeriesMetric<L extends string, C extends { labels: Record<string, string>; zero(): void }> {
  readonly aggregator = 'sum';
  abstract readonly type: 'histogram' | 'counter';
  private readonly cells = new Map<string, C>();

  constructor(
    /** Not readonly: an OpenMetrics registry renames counters in place. */
    public name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** Every series whose `label` has `value` goes (a removed plugin must not linger in /metrics); series held elsewhere count on unseen. */
  removeWhere(label: L, value: string): void {
    for (const [key, cell] of this.cells) if (cell.labels[label] === value) this.cells.delete(key);
  }

  /** How many series have `label` at `value`, whether or not they counted yet. */
  seriesWith(label: L, value: string): number {
    let n = 0;
    for (const cell of this.cells.values()) if (cell.labels[label] === value) n++;
    return n;
  }

  /** Registry.resetMetrics(): every series back to zero; the objects callers hold stay the ones that count. */
  reset(): void {
    for (const cell of this.cells.values()) cell.zero();
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: ValueLine[] }> {
    const values: ValueLine[] = [];
    for (const cell of this.cells.values()) this.lines(cell, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** The series of one label set, made on first use; it adds no line to /metrics until it counts. */
  protected cell(labels: Record<L, string>, make: (labels: Record<string, string>) => C): C {
    const key = JSON.stringify(this.labelNames.map((name) => labels[name]));
    let cell = this.cells.get(key);
    if (!cell) this.cells.set(key, (cell = make({ ...labels })));
    return cell;
  }

  protected abstract lines(cell: C, into: ValueLine[]): void;
}

export class SeriesHistogram<L extends string> extends SeriesMetric<L, HistogramCell> {
  readonly type = 'histogram';
  private readonly buckets: readonly number[];

  constructor(options: { name: string; help: string; labelNames: readonly L[]; buckets: readonly number[]; registry: Registry }) {
    super(options.name, options.help, options.labelNames, options.registry);
    this.buckets = [...options.buckets].sort((a, b) => a - b);
  }

  series(labels: Record<L, string>): HistogramSeries {
    return this.cell(labels, (l) => new HistogramCell(l, this.buckets));
  }

  protected lines(cell: HistogramCell, into: ValueLine[]): void {
    if (cell.count === 0) return;
    let cumulative = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += cell.inBucket[i];
      into.push({ labels: { le: this.buckets[i], ...cell.labels }, value: cumulative, metricName: `${this.name}_bucket` });
    }
    into.push({ labels: { le: '+Inf', ...cell.labels }, value: cell.count, metricName: `${this.name}_bucket` });
    into.push({ labels: cell.labels, value: cell.sum, metricName: `${this.name}_sum` });
    into.push({ labels: cell.labels, value: cell.count, metricName: `${this.name}_count` });
  }
}

export class SeriesCounter<L extends string> extends SeriesMetric<L, CounterCell> {
  readonly type = 'counter';

  constructor(options: { name: string; help: string; labelNames: readonly L[]; registry: Registry }) {
    super(options.name, options.help, options.labelNames, options.registry);
  }

  series(labels: Record<L, string>): CounterSeries {
    return this.cell(labels, (l) => new CounterCell(l));
  }

  protected lines(cell: CounterCell, into: ValueLine[]): void {
    if (cell.value !== 0) into.push({ labels: cell.labels, value: cell.value });
  }
}

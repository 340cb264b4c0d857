/**
 * Held series against prom-client's own metrics: the same observations give the same
 * /metrics text, series are per label set, removal and reset behave as the Registry expects.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { SeriesCounter, SeriesHistogram } from '../../src/runtime/metric-series';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const OBSERVED = [0, 0.0005, 0.001, 0.002, 0.05, 0.5, 0.9, 1, 3, 120];

/** The value lines of a registry's text, sorted, so label order inside a line is the only thing left to match. */
async function lines(registry: Registry): Promise<string[]> {
  return (await registry.metrics()).split('\n').filter((l) => l && !l.startsWith('#')).sort();
}

test('a held histogram series writes the same /metrics lines as prom-client for the same observations', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const held = new SeriesHistogram({ name: 'h_seconds', help: 'h', labelNames: ['plugin', 'outcome'] as const, buckets: BUCKETS, registry: ours });
  const reference = new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['plugin', 'outcome'] as const, buckets: BUCKETS, registers: [theirs] });
  const a = held.series({ plugin: 'a', outcome: 'ok' });
  const b = held.series({ plugin: 'b', outcome: 'ok' });
  for (const v of OBSERVED) {
    a.observe(v);
    reference.observe({ plugin: 'a', outcome: 'ok' }, v);
  }
  b.observe(0.02);
  reference.observe({ plugin: 'b', outcome: 'ok' }, 0.02);
  // A series made and never observed adds no line, as a prom-client child does not.
  held.series({ plugin: 'c', outcome: 'ok' });
  reference.labels({ plugin: 'c', outcome: 'ok' });
  expect(await lines(ours)).toEqual(await lines(theirs));
  expect(await lines(ours)).toContain('h_seconds_count{plugin="a",outcome="ok"} 10');
  expect(await lines(ours)).toContain('h_seconds_bucket{le="0.001",plugin="a",outcome="ok"} 3');
});

test('a held counter series counts per label set, as prom-client does', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const held = new SeriesCounter({ name: 'c_total', help: 'c', labelNames: ['plugin'] as const, registry: ours });
  const reference = new Counter({ name: 'c_total', help: 'c', labelNames: ['plugin'] as const, registers: [theirs] });
  const a = held.series({ plugin: 'a' });
  for (let i = 0; i < 5; i++) {
    a.inc();
    reference.inc({ plugin: 'a' });
  }
  held.series({ plugin: 'b' }).inc(3);
  reference.inc({ plugin: 'b' }, 3);
  expect(await lines(ours)).toEqual(await lines(theirs));
  expect((await held.get()).values.find((v) => v.labels.plugin === 'a')?.value).toBe(5);
});

test('the same label set gives the same series object; removing a label value drops its series and nothing else', async () => {
  const registry = new Registry();
  const held = new SeriesHistogram({ name: 'h_seconds', help: 'h', labelNames: ['plugin', 'hook'] as const, buckets: BUCKETS, registry });
  const first = held.series({ plugin: 'gone', hook: 'x' });
  expect(held.series({ plugin: 'gone', hook: 'x' })).toBe(first);
  first.observe(0.5);
  held.series({ plugin: 'gone', hook: 'y' }).observe(0.5);
  held.series({ plugin: 'kept', hook: 'x' }).observe(0.5);
  expect(held.seriesWith('plugin', 'gone')).toBe(2);

  held.removeWhere('plugin', 'gone');
  expect(held.seriesWith('plugin', 'gone')).toBe(0);
  expect(held.seriesWith('plugin', 'kept')).toBe(1);
  expect((await registry.metrics())).not.toMatch(/gone/);
  // A caller that still holds a removed series counts where nobody reads; a fresh lookup starts at zero.
  first.observe(0.5);
  expect(held.series({ plugin: 'gone', hook: 'x' })).not.toBe(first);
  expect((await registry.metrics())).not.toMatch(/gone/);
});

test('Registry.resetMetrics() zeroes the series and the objects callers hold keep counting', async () => {
  const registry = new Registry();
  const held = new SeriesCounter({ name: 'c_total', help: 'c', labelNames: ['plugin'] as const, registry });
  const a = held.series({ plugin: 'a' });
  a.inc(4);
  registry.resetMetrics();
  expect(await lines(registry)).toEqual([]);
  a.inc();
  expect(await lines(registry)).toEqual(['c_total{plugin="a"} 1']);
});

test('label values that would collide when joined stay separate series', async () => {
  const registry = new Registry();
  const held = new SeriesCounter({ name: 'c_total', help: 'c', labelNames: ['a', 'b'] as const, registry });
  held.series({ a: 'x,y', b: 'z' }).inc();
  held.series({ a: 'x', b: 'y,z' }).inc(2);
  expect(await lines(registry)).toEqual(['c_total{a="x",b="y,z"} 2', 'c_total{a="x,y",b="z"} 1']);
});

/** The log ring: bounded, oldest first, and paged back by sequence number while records arrive. */
import { LogBuffer } from '../../src/runtime/log-buffer';

const filled = (capacity: number, n: number) => {
  const b = new LogBuffer<number>(capacity);
  for (let i = 1; i <= n; i++) b.push(i);
  return b;
};

test('keeps the newest records, oldest first, each numbered by its push', () => {
  expect(filled(4, 0).toArray()).toEqual([]);
  expect(filled(4, 3).toArray()).toEqual([1, 2, 3]);
  expect(filled(4, 10).toArray()).toEqual([7, 8, 9, 10]);
  expect(filled(4, 10).toArray(2)).toEqual([9, 10]);
  expect(filled(4, 10).page()).toEqual({ first: 7, items: [7, 8, 9, 10] });
});

test('pages back from a sequence number until the ring runs out', () => {
  const b = filled(5, 12);
  expect(b.page(2)).toEqual({ first: 11, items: [11, 12] });
  expect(b.page(2, 11)).toEqual({ first: 9, items: [9, 10] });
  expect(b.page(2, 9)).toEqual({ first: 8, items: [8] });
  expect(b.page(2, 8)).toEqual({ first: 8, items: [] });
  expect(b.page(10, 100)).toEqual({ first: 8, items: [8, 9, 10, 11, 12] });
  // New records do not move a page already asked for.
  b.push(13);
  b.push(14);
  expect(b.page(2, 11)).toEqual({ first: 10, items: [10] });
});

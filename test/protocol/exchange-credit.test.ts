import { CreditGate, CreditWindow, INITIAL_EXCHANGE_CREDIT } from '../../src/protocol/exchange-credit';

const MiB = 1024 * 1024;

test('a window grants what it has room for at once, then again only as the consumer takes bytes', () => {
  const w = new CreditWindow(MiB);
  // The sender starts with the initial credit: the first grant tops it up to the window.
  expect(w.grant()).toBe(MiB - INITIAL_EXCHANGE_CREDIT);
  expect(w.grant()).toBe(0);
  expect(w.received(MiB / 2)).toBe(true);
  // Nothing consumed: a grant now would let the sender exceed the window.
  expect(w.grant()).toBe(0);
  // While the sender still has credit, a small take is held back until a quarter of the window is free (few grant frames).
  expect(w.consumed(1000)).toBe(0);
  expect(w.consumed(MiB / 4)).toBe(MiB / 4 + 1000);
  // Unread plus outstanding never exceeds the window.
  expect(w.received(MiB / 2 + MiB / 4 + 1000)).toBe(true);
  expect(w.received(1)).toBe(false);
});

test('a sender that has spent everything gets a grant for any room, so it never waits forever', () => {
  const w = new CreditWindow(4 * INITIAL_EXCHANGE_CREDIT);
  expect(w.received(INITIAL_EXCHANGE_CREDIT)).toBe(true);
  // Outstanding is zero: even a small take is granted back.
  expect(w.consumed(100)).toBe(4 * INITIAL_EXCHANGE_CREDIT - INITIAL_EXCHANGE_CREDIT + 100);
});

test('a window of the initial credit never grants more', () => {
  const w = new CreditWindow(INITIAL_EXCHANGE_CREDIT);
  expect(w.grant()).toBe(0);
  w.received(INITIAL_EXCHANGE_CREDIT);
  expect(w.consumed(INITIAL_EXCHANGE_CREDIT)).toBe(INITIAL_EXCHANGE_CREDIT);
});

test('a gate spends credit, waits for a grant, and lets a waiter go when the exchange is over', async () => {
  const g = new CreditGate();
  expect(g.bytes).toBe(INITIAL_EXCHANGE_CREDIT);
  g.spend(INITIAL_EXCHANGE_CREDIT);
  let woke = false;
  const waiting = g.whenAvailable().then(() => (woke = true));
  await Promise.resolve();
  expect(woke).toBe(false);
  g.grant(10);
  await waiting;
  expect(g.bytes).toBe(10);

  g.spend(10);
  const closed = g.whenAvailable();
  g.close();
  await closed;
  expect(g.bytes).toBe(0);
  // Once closed, nobody waits.
  await g.whenAvailable();
});

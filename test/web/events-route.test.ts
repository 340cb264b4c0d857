/** Tickets for the event feed: single use, short-lived, bounded. */
import { TICKET_TTL_MS, TicketBook } from '../../src/server/events-route';

test('a ticket works once, within its lifetime only', () => {
  let now = 1_000;
  const book = new TicketBook(TICKET_TTL_MS, () => now);
  const a = book.issue();
  expect(a.expiresAt).toBe(1_000 + TICKET_TTL_MS);
  expect(a.ticket).toMatch(/^[A-Za-z0-9_-]{32}$/);
  expect(book.redeem(a.ticket)).toBe(true);
  expect(book.redeem(a.ticket)).toBe(false);

  const b = book.issue();
  now += TICKET_TTL_MS;
  expect(book.redeem(b.ticket)).toBe(false);
  expect(book.redeem('never-issued')).toBe(false);
});

test('issuing many keeps only the newest thousand', () => {
  const book = new TicketBook();
  const first = book.issue().ticket;
  for (let i = 0; i < 1_000; i++) book.issue();
  expect(book.redeem(first)).toBe(false);
  expect(book.redeem(book.issue().ticket)).toBe(true);
});

/**
 * A fixed-size ring of a plugin's recent log records: memory stays bounded whatever it writes.
 * Every record pushed gets the next sequence number (from 1), so a reader can page back from the
 * oldest record it holds (`page(limit, before)`) without gaps or repeats while new ones arrive.
 */
export class LogBuffer<T> {
  private readonly items: (T | undefined)[];
  private next = 0;
  private count = 0;
  /** Records ever pushed: the sequence number of the newest. */
  private pushed = 0;

  constructor(readonly capacity: number) {
    this.items = new Array(capacity);
  }

  push(item: T): void {
    this.items[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
    this.pushed++;
  }

  /** Oldest first; at most `limit` of the newest. */
  toArray(limit = this.count): T[] {
    return this.page(limit).items;
  }

  /**
   * At most `limit` of the newest records whose sequence number is below `before` (all when
   * absent), oldest first; `first` is the sequence number of `items[0]`.
   */
  page(limit = this.count, before = Infinity): { first: number; items: T[] } {
    const oldest = this.pushed - this.count + 1;
    const end = Math.min(this.pushed + 1, Math.max(before, oldest));
    const first = Math.max(oldest, end - Math.max(0, limit));
    const items: T[] = [];
    for (let seq = first; seq < end; seq++) {
      items.push(this.items[(this.next - (this.pushed - seq) - 1 + 2 * this.capacity) % this.capacity] as T);
    }
    return { first, items };
  }
}

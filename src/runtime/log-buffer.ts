/** A fixed-size ring of a plugin's recent log records: memory stays bounded whatever it writes. */
export class LogBuffer<T> {
  private readonly items: (T | undefined)[];
  private next = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    this.items = new Array(capacity);
  }

  push(item: T): void {
    this.items[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** Oldest first; at most `limit` of the newest. */
  toArray(limit = this.count): T[] {
    const n = Math.min(limit, this.count);
    const out: T[] = [];
    for (let i = this.count - n; i < this.count; i++) {
      out.push(this.items[(this.next - this.count + i + this.capacity) % this.capacity] as T);
    }
    return out;
  }
}

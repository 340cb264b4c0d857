/**
 * Reads a text/event-stream body as it arrives: `push` takes chunks of text in
 * any sizes, and each complete event (ended by a blank line) goes to `onEvent`
 * with its `event:` name (default "message") and its `data:` lines parsed as JSON.
 * Comment lines (heartbeats) and `retry:` are passed over.
 */
export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];

  constructor(private readonly onEvent: (event: string, data: unknown) => void) {}

  push(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, end).replace(/\r$/, '');
      this.buffer = this.buffer.slice(end + 1);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length) this.dispatch();
      this.event = '';
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
  }

  private dispatch(): void {
    const text = this.data.join('\n');
    this.data = [];
    let data: unknown = text;
    try {
      data = JSON.parse(text);
    } catch {
      // Not JSON: handed over as text.
    }
    this.onEvent(this.event || 'message', data);
  }
}

import { EventEmitter } from 'node:events';
import { FrameBatcher, type BatchSink } from '../../src/protocol/frame-batch';

interface Frame {
  id: number;
  size: number;
}

/** A sink that records batches and pushes back after `room` writes until drained. */
class Sink extends EventEmitter implements BatchSink<Frame> {
  batches: number[][] = [];
  ended = false;
  constructor(private room = Infinity) {
    super();
  }
  write(batch: { frames: Frame[] }): boolean {
    this.batches.push(batch.frames.map((f) => f.id));
    return --this.room > 0;
  }
  drain(room = Infinity): void {
    this.room = room;
    this.emit('drain');
  }
  end(): void {
    this.ended = true;
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve));
const frame = (id: number, size = 10): Frame => ({ id, size });

test('frames pushed in one turn go out as one batch, in order, at the end of the turn', async () => {
  const sink = new Sink();
  const b = new FrameBatcher(sink, 1000, (f: Frame) => f.size);
  for (let i = 1; i <= 5; i++) b.push(frame(i));
  expect(sink.batches).toEqual([]);
  await turn();
  expect(sink.batches).toEqual([[1, 2, 3, 4, 5]]);
  b.push(frame(6));
  await turn();
  expect(sink.batches).toEqual([[1, 2, 3, 4, 5], [6]]);
});

test('a batch is cut at the budget, and a frame larger than the budget goes alone', async () => {
  const sink = new Sink();
  const b = new FrameBatcher(sink, 100, (f: Frame) => f.size);
  b.push(frame(1, 40));
  b.push(frame(2, 40));
  b.push(frame(3, 40)); // 120 >= 100: written at once, cut before the frame that does not fit
  expect(sink.batches).toEqual([[1, 2], [3]]);
  b.push(frame(4, 500));
  expect(sink.batches).toEqual([[1, 2], [3], [4]]);
});

test('while the stream pushes back, frames wait; after drain they go out in budget-sized batches, then the end', async () => {
  const sink = new Sink(1);
  const b = new FrameBatcher(sink, 100, (f: Frame) => f.size);
  b.push(frame(1));
  await turn();
  expect(sink.batches).toEqual([[1]]);
  for (let i = 2; i <= 13; i++) b.push(frame(i, 30));
  b.end();
  await turn();
  expect(sink.batches).toEqual([[1]]);
  expect(sink.ended).toBe(false);
  sink.drain();
  expect(sink.batches).toEqual([[1], [2, 3, 4], [5, 6, 7], [8, 9, 10], [11, 12, 13]]);
  expect(sink.ended).toBe(true);
  // Nothing is taken after the end.
  b.push(frame(99));
  await turn();
  expect(sink.batches.flat()).not.toContain(99);
});

test('stop drops what is queued', async () => {
  const sink = new Sink();
  const b = new FrameBatcher(sink, 100, (f: Frame) => f.size);
  b.push(frame(1));
  b.stop();
  await turn();
  expect(sink.batches).toEqual([]);
});

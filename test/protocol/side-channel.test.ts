/**
 * The side-channel sockets on their own, with real unix sockets in a real 0700 folder: the
 * listener's file (mode, one accept, removal on every path), the reader's rule that a body is
 * complete only with EOF and a matching count, and names from a peer.
 */
import * as fs from 'node:fs';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChannelListener, ChannelReader, ChannelWriter, channelName, channelPath } from '../../src/protocol/side-channel';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ph-'));
  fs.chmodSync(dir, 0o700);
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A listener whose outcome is a promise: the connected socket, or the failure. */
function listen(timeoutMs = 5_000): { channel: ChannelListener; outcome: Promise<net.Socket> } {
  let channel!: ChannelListener;
  const outcome = new Promise<net.Socket>((resolve, reject) => {
    channel = new ChannelListener(dir, timeoutMs, resolve, reject);
  });
  return { channel, outcome };
}

/** Reads a channel to its outcome: the bytes, or the error. */
function read(name: string, expected: () => number | undefined): Promise<{ bytes: Buffer; err: Error | null }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const reader = new ChannelReader(
      channelPath(dir, name)!,
      (c) => chunks.push(c),
      (err) => resolve({ bytes: Buffer.concat(chunks), err }),
    );
    const n = expected();
    if (n !== undefined) reader.expect(n);
  });
}

test('names are short random tokens, and only plain names from a peer become paths', () => {
  const names = new Set(Array.from({ length: 100 }, channelName));
  expect(names.size).toBe(100);
  for (const name of names) {
    expect(name).toMatch(/^b[A-Za-z0-9_-]{16}$/);
    // Inside the 24-byte reserve makeSocketDir keeps beside the folder.
    expect(Buffer.byteLength(`/${name}`)).toBeLessThanOrEqual(24);
  }
  expect(channelPath(dir, 'babc')).toBe(path.join(dir, 'babc'));
  for (const bad of ['', '.', '..', '../x', 'a/b', '/etc/passwd', 'x'.repeat(41), 'a b']) expect(channelPath(dir, bad)).toBeNull();
});

test('the socket file is 0600 in the 0700 folder while it listens, and gone after the one accept', async () => {
  const { channel, outcome } = listen();
  const file = path.join(dir, channel.name);
  const stat = fs.statSync(file);
  expect(stat.isSocket()).toBe(true);
  expect(stat.mode & 0o777).toBe(0o600);
  expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
  const body = Buffer.from('x'.repeat(100_000));
  let settled = false;
  void read(channel.name, () => undefined).then(() => (settled = true));
  const socket = await outcome;
  expect(fs.existsSync(file)).toBe(false);
  const writer = new ChannelWriter(socket);
  await writer.write(body);
  expect(writer.end()).toBe(body.length);
  // The reader saw EOF (it closed its end in answer, so ours closes), but without a count it is not complete.
  await new Promise((r) => socket.once('close', r));
  await new Promise((r) => setImmediate(r));
  expect(settled).toBe(false);
  channel.close();
});

test('EOF with a matching count completes; a short count or a missing end is a truncated body', async () => {
  for (const [sent, counted] of [
    [70_000, 70_000],
    [70_000, 90_000],
    [70_000, 10],
  ] as const) {
    const { channel, outcome } = listen();
    const got = read(channel.name, () => counted);
    const writer = new ChannelWriter(await outcome);
    await writer.write(Buffer.alloc(sent, 7));
    writer.end();
    const { bytes, err } = await got;
    if (sent === counted) {
      expect(err).toBeNull();
      expect(bytes.length).toBe(sent);
    } else {
      expect(err?.message).toMatch(/truncated body/);
    }
    channel.close();
  }
  // The sender goes away without a clean end: an error, whatever the count.
  const { channel, outcome } = listen();
  const got = read(channel.name, () => 1_000);
  const socket = await outcome;
  socket.write(Buffer.alloc(10));
  socket.destroy();
  const { err } = await got;
  expect(err).not.toBeNull();
  channel.close();
});

test('a body of many reads arrives byte for byte, every chunk intact after the reads that came after it', async () => {
  // Guards any read path that reuses memory between reads: a chunk handed out must never be overwritten.
  const body = Buffer.from(Array.from({ length: 5 * 1024 * 1024 + 12_345 }, (_, i) => (i * 31 + (i >> 16)) & 0xff));
  const { channel, outcome } = listen();
  const got = read(channel.name, () => body.length);
  const writer = new ChannelWriter(await outcome);
  for (let at = 0; at < body.length; at += 100_000) await writer.write(body.subarray(at, at + 100_000));
  writer.end();
  const { bytes, err } = await got;
  expect(err).toBeNull();
  expect(bytes.equals(body)).toBe(true);
  channel.close();
});

test('nobody connecting: the listener fails at its timeout and its file is gone; close() before that does the same', async () => {
  const { channel, outcome } = listen(50);
  await expect(outcome).rejects.toThrow(/nobody connected/);
  expect(fs.readdirSync(dir)).toEqual([]);
  channel.close();
  const second = listen();
  second.channel.close();
  await expect(second.outcome).rejects.toThrow(/closed before anyone connected/);
  expect(fs.readdirSync(dir)).toEqual([]);
});

test('a writer whose reader went away rejects instead of waiting forever', async () => {
  const { channel, outcome } = listen();
  let reader!: ChannelReader;
  reader = new ChannelReader(channelPath(dir, channel.name)!, () => reader.destroy(), () => undefined);
  const writer = new ChannelWriter(await outcome);
  let failed: Error | undefined;
  // Bounded: the reader destroys its end on the first chunk, so a write soon meets the closed socket.
  for (let i = 0; i < 1_000 && !failed; i++) {
    await Promise.resolve(writer.write(Buffer.alloc(256 * 1024))).catch((err: Error) => (failed = err));
    await new Promise((r) => setImmediate(r));
  }
  expect(failed).toBeDefined();
  channel.close();
});

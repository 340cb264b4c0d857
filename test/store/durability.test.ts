/**
 * The durability promise of docs/durability.md, tested with a real crash: a
 * child process writes keys and reports each one only after the store has
 * acknowledged it; we SIGKILL it mid-stream, reopen the file, and require every
 * reported key with its value. The kill is real; power loss cannot be staged
 * here, so for 'power-loss' this proves the SIGKILL half and the pragma test
 * in sqlite-store.test.ts proves FULL is set.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SqliteStore } from '../../src/store';
import type { Durability } from '../../src/store';
import { NODE, fixture, tempDir } from '../helpers';

const WRITER = fixture('store/kv-writer.js');
const ROOT = path.join(__dirname, '..', '..');
const ACKS_BEFORE_KILL = 2_000;
const GIVE_UP_MS = 45_000;

/** What kv-writer.js stores under k<i>. */
const valueOf = (i: number): Buffer => Buffer.from(`value-${i}-`.padEnd(200, '.'));

interface Crash {
  acknowledged: string[];
  signal: NodeJS.Signals | null;
  walBytes: number;
}

/** Runs the writer until it has acknowledged ACKS_BEFORE_KILL keys, then SIGKILLs it. */
function writeThenKill(file: string, durability: Durability): Promise<Crash> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [WRITER, file, durability], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let lines = 0;
    let killed = false;
    const kill = (): void => {
      if (!killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(kill, GIVE_UP_MS);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      for (const c of chunk) if (c === '\n') lines++;
      if (lines >= ACKS_BEFORE_KILL) kill();
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // The part after the last newline is a line the writer had not finished printing: not an acknowledgement.
      const acknowledged = out.slice(0, out.lastIndexOf('\n') + 1).split('\n').filter(Boolean);
      if (acknowledged.length < ACKS_BEFORE_KILL) {
        reject(new Error(`writer stopped after ${acknowledged.length} acknowledgements (code ${code}, signal ${signal}); stderr:\n${err}`));
        return;
      }
      const wal = `${file}-wal`;
      resolve({ acknowledged, signal, walBytes: fs.existsSync(wal) ? fs.statSync(wal).size : 0 });
    });
  });
}

describe('durability: acknowledged KV writes survive SIGKILL of the writing process', () => {
  let tmp: ReturnType<typeof tempDir>;

  beforeAll(() => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'store', 'index.js'))) {
      throw new Error('dist/src/store/index.js is missing: run `npx tsc -p tsconfig.json` before this test');
    }
  });

  beforeEach(() => {
    tmp = tempDir('pht-dur-');
  });

  afterEach(() => {
    tmp.cleanup();
  });

  it.each<Durability>(['process-crash', 'power-loss'])('%s mode keeps every acknowledged key with its value', async (durability) => {
    const file = path.join(tmp.dir, 'kv.db');
    const crash = await writeThenKill(file, durability);
    expect(crash.signal).toBe('SIGKILL');
    // The kill left a WAL behind, so reopening below really is crash recovery.
    expect(crash.walBytes).toBeGreaterThan(0);

    const store = SqliteStore.open({ file, durability });
    try {
      const missing: string[] = [];
      const wrong: string[] = [];
      for (const key of crash.acknowledged) {
        expect(key).toMatch(/^k\d+$/);
        const value = await store.kvGet('writer', key);
        if (value === undefined) missing.push(key);
        else if (!value.equals(valueOf(Number(key.slice(1))))) wrong.push(key);
      }
      expect({ missing, wrong }).toEqual({ missing: [], wrong: [] });
      // Keys were acknowledged in order, so the acknowledged ones are exactly k0..k(n-1).
      expect(crash.acknowledged[crash.acknowledged.length - 1]).toBe(`k${crash.acknowledged.length - 1}`);
    } finally {
      await store.close();
    }
  });
});

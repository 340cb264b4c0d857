/**
 * A PostgreSQL server of one test's own, for tests that stop and start the
 * database under running hosts (the shared server of scripts/with-postgres.sh
 * must stay up for every other suite). Same rules as that script: Debian's
 * binaries (PG_BIN, else the newest /usr/lib/postgresql/<version>/bin), initdb
 * in a temp dir as the `postgres` user when we are root (PostgreSQL refuses
 * to run as root), trust auth, loopback only, a port the kernel chose. The
 * port is kept across restarts, so clients reconnect to the same URL.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { availableOrSkip, tempDir } from './index';

const INSTALL = 'install Debian\'s postgresql package (apt-get install postgresql) or set PG_BIN to a PostgreSQL 13+ bin dir';
/** What pg_ctl waits for a start or a stop, in seconds. */
const PG_CTL_WAIT_S = 60;

/** The bin dir of the newest PostgreSQL installed (or PG_BIN), or undefined. */
export function pgBinDir(): string | undefined {
  const given = process.env.PG_BIN;
  const candidates = given ? [given] : installedBinDirs();
  return candidates.find((dir) => isExecutable(path.join(dir, 'initdb')));
}

/**
 * `describe` when PostgreSQL's binaries are installed, else `describe.skip`
 * after saying what to install; throws instead under PLUGHOST_REQUIRE_INTEROP=1.
 */
export function describeIfPrivatePg(what: string): jest.Describe {
  const missing = pgBinDir() === undefined ? `no PostgreSQL binaries for the ${what} tests: ${INSTALL}` : null;
  return availableOrSkip(what, missing) ? describe : describe.skip;
}

export interface PrivatePostgres {
  /** A superuser on the `postgres` database; the same across restarts. */
  readonly url: string;
  readonly port: number;
  readonly running: boolean;
  /** `immediate` is a crash as clients see it (no shutdown checkpoint, sessions cut); `fast` ends sessions cleanly. */
  stop(mode?: 'immediate' | 'fast'): Promise<void>;
  /** Starts the stopped server again on the same port and data dir. */
  start(): Promise<void>;
  restart(mode?: 'immediate' | 'fast'): Promise<void>;
  /** The server's own log, for a failing test's report. */
  log(): string;
  /** Stops the server if it runs and removes its files; a second call does nothing. */
  close(): Promise<void>;
}

/** initdb and start a server; `close()` it in afterAll, which runs also when a test failed. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = pgBinDir();
  if (bin === undefined) throw new Error(`no PostgreSQL binaries: ${INSTALL}`);
  const work = tempDir('plughost-pg-');
  const data = path.join(work.dir, 'data');
  const logFile = path.join(work.dir, 'server.log');
  const asRoot = process.getuid?.() === 0;
  const run = (tool: string, args: string[]) => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args]] : [path.join(bin, tool), args];
    return exec(cmd, argv, (PG_CTL_WAIT_S + 30) * 1000);
  };
  let running = false;
  let closed = false;
  let port = 0;
  try {
    if (asRoot) await exec('chown', ['postgres', work.dir], 10_000);
    await run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync']);
    port = await freePort();
  } catch (err) {
    work.cleanup();
    throw err;
  }
  const server: PrivatePostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    get running() {
      return running;
    },
    async start() {
      await run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', String(PG_CTL_WAIT_S),
        '-o', `-p ${port} -k ${work.dir} -c listen_addresses=127.0.0.1 -c max_connections=200`, 'start']);
      running = true;
    },
    async stop(mode = 'immediate') {
      await run('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', String(PG_CTL_WAIT_S), 'stop']);
      running = false;
    },
    async restart(mode = 'immediate') {
      await server.stop(mode);
      await server.start();
    },
    log() {
      try {
        return fs.readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      if (running) await server.stop('immediate').catch(() => undefined);
      work.cleanup();
    },
  };
  try {
    await server.start();
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}

function installedBinDirs(): string[] {
  const root = '/usr/lib/postgresql';
  let versions: string[];
  try {
    versions = fs.readdirSync(root);
  } catch {
    return [];
  }
  // Newest first: Debian names the folders after the major version ("9.6", "13", "16").
  versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  return versions.map((v) => path.join(root, v, 'bin'));
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A loopback port the kernel has just handed out and taken back. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

function exec(cmd: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve();
    });
  });
}

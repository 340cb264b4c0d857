/**
 * A control group of its own for one plugin launch (Linux): a memory limit the
 * kernel enforces on everything the plugin starts, a pids limit, an OOM-kill
 * counter that tells a memory death from any other SIGKILL, and a kill that
 * reaches every process in it whatever its process group or environment.
 *
 * cgroup v1 (separate `memory` and `pids` hierarchies) and v2 (one unified
 * hierarchy with both controllers) are supported. Where the host cannot create
 * a child of its own cgroup (not root, read-only /sys, v2 controllers not
 * delegated), `create` returns null with the reason and the runtime falls back
 * to the RSS watchdog.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Exit status of the wrapper when it cannot join the cgroup: the plugin never ran. */
export const CGROUP_JOIN_FAILED_EXIT = 125;

/**
 * Joins the cgroup, then execs the plugin: the pid written is the plugin's own
 * (exec keeps it), so nothing the plugin runs ever exists outside the group.
 * Arguments: the variables the shell set itself that the plugin must not see,
 * `--`, the cgroup.procs files, `--`, the command and its arguments.
 */
const JOIN_SCRIPT = [
  'while [ "$1" != -- ]; do unset "$1"; shift; done; shift',
  `while [ "$1" != -- ]; do echo $$ > "$1" || exit ${CGROUP_JOIN_FAILED_EXIT}; shift; done; shift`,
  'exec "$@"',
].join('; ');

/** What a POSIX shell adds to the environment of its own accord; the plugin's environment stays the host's choice. */
const SHELL_VARIABLES = ['PWD', 'OLDPWD', 'SHLVL'];

/** Passes of "read cgroup.procs, SIGKILL each": a process forking during one is caught by the next. */
const KILL_PASSES = 20;

interface Layout {
  version: 1 | 2;
  /** v1: the memory and pids folders of our own cgroup; v2: the one unified folder, twice. */
  memory: string;
  pids: string;
}

export interface CgroupLimits {
  /** 0 for no memory limit. */
  memoryBytes: number;
  /** Tasks (processes and threads) allowed at once; 0 for no pids limit. */
  pidsMax: number;
}

export class PluginCgroup {
  private removed = false;

  /** Use `create`; exported for the leftover sweep, which adopts folders that already exist. */
  constructor(
    readonly version: 1 | 2,
    /** The folders made for this launch (one on v2; memory and pids on v1). */
    private readonly dirs: string[],
  ) {}

  /**
   * Makes `<our cgroup>/<name>` with the limits set, or returns why it cannot
   * (nothing is left behind then). `name` must be unique per launch.
   */
  static create(name: string, limits: CgroupLimits): PluginCgroup | string {
    const layout = findLayout();
    if (typeof layout === 'string') return layout;
    const dirs = layout.version === 2 ? [path.join(layout.memory, name)] : [path.join(layout.memory, name), path.join(layout.pids, name)];
    const made: string[] = [];
    try {
      for (const dir of dirs) {
        fs.mkdirSync(dir);
        made.push(dir);
      }
      const group = new PluginCgroup(layout.version, dirs);
      group.applyLimits(limits);
      return group;
    } catch (err) {
      for (const dir of made.reverse()) rmdirQuiet(dir);
      return `cannot create a cgroup under ${layout.memory}: ${(err as Error).message}`;
    }
  }

  /**
   * The command that runs `cmd args` inside this cgroup from its first
   * instruction. `keep`: variables the plugin is given on purpose (its
   * manifest's env), left alone even when the shell would otherwise add them.
   */
  wrap(cmd: string, args: string[], keep: readonly string[] = []): { cmd: string; args: string[] } {
    const procs = this.dirs.map((dir) => path.join(dir, 'cgroup.procs'));
    const unset = SHELL_VARIABLES.filter((name) => !keep.includes(name));
    return { cmd: '/bin/sh', args: ['-c', JOIN_SCRIPT, 'plughost-cgroup', ...unset, '--', ...procs, '--', cmd, ...args] };
  }

  /** True once the kernel's OOM killer has ended a process of this cgroup. */
  oomKilled(): boolean {
    const memory = this.dirs[0];
    const file = this.version === 2 ? 'memory.events' : 'memory.oom_control';
    const text = readQuiet(path.join(memory, file));
    const kills = /^oom_kill (\d+)$/m.exec(text);
    if (kills) return Number(kills[1]) > 0;
    // Kernels before 4.13 have no oom_kill counter in v1: a failed charge is the best sign left.
    return this.version === 1 && Number(readQuiet(path.join(memory, 'memory.failcnt')) || 0) > 0;
  }

  /** Pids in the cgroup now (every process, whatever it did to its group or environment). */
  pids(): number[] {
    const found = new Set<number>();
    for (const dir of this.dirs) {
      for (const line of readQuiet(path.join(dir, 'cgroup.procs')).split('\n')) if (line) found.add(Number(line));
    }
    return [...found];
  }

  /**
   * SIGKILLs every process in the cgroup and removes its folders. Waits (a
   * bounded while) for the kernel to let go of them: a folder stays busy until
   * its last process has exited. Safe to call more than once.
   */
  async destroy(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    const kill = this.version === 2 ? path.join(this.dirs[0], 'cgroup.kill') : null;
    for (let pass = 0; pass < KILL_PASSES; pass++) {
      if (kill && fs.existsSync(kill)) writeQuiet(kill, '1');
      const left = this.pids();
      if (left.length === 0 && this.dirs.every(rmdirQuiet)) return;
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone between the read and the kill.
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 25 * (pass + 1)));
    }
    for (const dir of this.dirs) rmdirQuiet(dir);
  }

  /** The folders of this cgroup that still exist (for tests and leftover checks). */
  existingDirs(): string[] {
    return this.dirs.filter((dir) => fs.existsSync(dir));
  }

  private applyLimits({ memoryBytes, pidsMax }: CgroupLimits): void {
    const [memory] = this.dirs;
    const pids = this.dirs[this.dirs.length - 1];
    if (memoryBytes <= 0) {
      // No memory limit: the cgroup still contains the plugin and limits its pids.
    } else if (this.version === 2) {
      fs.writeFileSync(path.join(memory, 'memory.max'), String(memoryBytes));
      // Without swap off, a plugin over its limit pages out instead of being stopped.
      const swap = path.join(memory, 'memory.swap.max');
      if (fs.existsSync(swap)) fs.writeFileSync(swap, '0');
    } else {
      fs.writeFileSync(path.join(memory, 'memory.limit_in_bytes'), String(memoryBytes));
      // memory+swap: present only when the kernel accounts swap; it must not be below the memory limit.
      const memsw = path.join(memory, 'memory.memsw.limit_in_bytes');
      if (fs.existsSync(memsw)) fs.writeFileSync(memsw, String(memoryBytes));
    }
    if (pidsMax > 0) fs.writeFileSync(path.join(pids, 'pids.max'), String(pidsMax));
  }
}

/**
 * Removes folders named `<prefix>-*` under our own cgroup, killing what is in
 * them: what plugins of an earlier run of the same host left when that host
 * was SIGKILLed. Returns how many folders were found.
 */
export async function destroyLeftoverCgroups(prefix: string): Promise<number> {
  const layout = findLayout();
  if (typeof layout === 'string') return 0;
  const names = new Set<string>();
  for (const dir of new Set([layout.memory, layout.pids])) {
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) if (e.isDirectory() && e.name.startsWith(`${prefix}-`)) names.add(e.name);
  }
  for (const name of names) {
    const dirs = layout.version === 2 ? [path.join(layout.memory, name)] : [path.join(layout.memory, name), path.join(layout.pids, name)];
    await new PluginCgroup(layout.version, dirs.filter((d) => fs.existsSync(d))).destroy();
  }
  return names.size;
}

/** Our own cgroup folders, from /proc/self/cgroup and /proc/self/mountinfo; a string says why there are none. */
function findLayout(): Layout | string {
  if (process.platform !== 'linux') return `cgroups exist only on Linux (this is ${process.platform})`;
  const membership = readQuiet('/proc/self/cgroup');
  const mounts = readQuiet('/proc/self/mountinfo');
  if (!membership || !mounts) return 'cannot read /proc/self/cgroup or /proc/self/mountinfo';
  const v1 = (controller: string): string | null => {
    const line = membership.split('\n').find((l) => l.split(':')[1]?.split(',').includes(controller));
    const mount = mountPoint(mounts, 'cgroup', controller);
    return line && mount ? joinCgroup(mount, line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1)) : null;
  };
  const memory = v1('memory');
  const pids = v1('pids');
  if (memory && pids) return { version: 1, memory, pids };
  const unified = membership.split('\n').find((l) => l.startsWith('0::'));
  const mount = mountPoint(mounts, 'cgroup2', null);
  if (!unified || !mount) return 'no cgroup v1 memory and pids controllers, and no cgroup v2 hierarchy, are mounted';
  const own = joinCgroup(mount, unified.slice(3));
  if (!own) return `our cgroup v2 folder ${path.join(mount, unified.slice(3))} is not visible here`;
  const wanted = ['memory', 'pids'];
  const delegated = readQuiet(path.join(own, 'cgroup.subtree_control')).split(/\s+/);
  if (!wanted.every((c) => delegated.includes(c))) {
    // Enabling controllers for children is refused while our own cgroup holds processes (ours): then fall back.
    const available = readQuiet(path.join(own, 'cgroup.controllers')).split(/\s+/);
    if (!wanted.every((c) => available.includes(c))) return `cgroup v2 at ${own} does not offer the memory and pids controllers`;
    if (!writeQuiet(path.join(own, 'cgroup.subtree_control'), '+memory +pids')) {
      return `cannot enable the memory and pids controllers for children of ${own}`;
    }
  }
  return { version: 2, memory: own, pids: own };
}

/** Mount point of a cgroup filesystem of `fstype` (with `controller` among its options for v1). */
function mountPoint(mountinfo: string, fstype: string, controller: string | null): string | null {
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const [type, , superOptions] = right.split(' ');
    if (type !== fstype) continue;
    // Only a mount of the hierarchy's root maps /proc/self/cgroup paths onto folders directly.
    const fields = left.split(' ');
    if (fields[3] !== '/') continue;
    if (controller && !superOptions?.split(',').includes(controller)) continue;
    return fields[4];
  }
  return null;
}

function joinCgroup(mount: string, own: string): string | null {
  const dir = path.join(mount, own);
  return fs.existsSync(dir) ? dir : null;
}

function readQuiet(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function writeQuiet(file: string, text: string): boolean {
  try {
    fs.writeFileSync(file, text);
    return true;
  } catch {
    return false;
  }
}

function rmdirQuiet(dir: string): boolean {
  try {
    fs.rmdirSync(dir);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

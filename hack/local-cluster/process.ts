import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A long-running child process whose output goes to a log file. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  isRunning(): boolean;
  /** SIGTERM, then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL at once, as a crash would. */
  kill(): Promise<void>;
  logTail(lines?: number): Promise<string>;
}

export function startProcess(
  name: string,
  command: string,
  args: string[],
  options: { logDir: string; env?: NodeJS.ProcessEnv; pidDir?: string },
): ManagedProcess {
  const logPath = join(options.logDir, `${name}.log`);
  const log = createWriteStream(logPath, { flags: 'a' });
  const child: ChildProcess = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const pid = child.pid;
  const pidFile = options.pidDir ? join(options.pidDir, `${name}.pid`) : undefined;
  if (pidFile) writeFileSync(pidFile, String(pid));
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    // 'close' comes after the output pipes drained, so the log holds the last lines when this resolves.
    child.once('close', (code, signal) => {
      running = false;
      if (pidFile) rmSync(pidFile, { force: true });
      log.end(() => resolve(code ?? signal ?? 'unknown'));
    });
    child.once('error', (err) => {
      running = false;
      log.write(`spawn error: ${err.message}\n`);
      resolve('spawn-error');
    });
  });
  const waitOrKill = async (graceMs: number): Promise<void> => {
    const done = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!done) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  return {
    name,
    pid,
    logPath,
    exited,
    isRunning: () => running,
    async stop(graceMs = 10_000) {
      if (!running) return;
      child.kill('SIGTERM');
      await waitOrKill(graceMs);
    },
    async kill() {
      if (!running) return;
      child.kill('SIGKILL');
      await exited;
    },
    async logTail(lines = 20) {
      const text = await readFile(logPath, 'utf8').catch(() => '');
      return text
        .split('\n')
        .slice(-lines - 1)
        .join('\n');
    },
  };
}

/**
 * Kills processes left behind by harness runs whose owner died without cleaning up (a crashed test run
 * or a killed sandbox), so ports and memory do not leak from one run into the next.
 */
export function reapOrphans(runRoot: string): void {
  if (!existsSync(runRoot)) return;
  for (const run of readdirSync(runRoot)) {
    const runDir = join(runRoot, run);
    const ownerFile = join(runDir, 'owner.pid');
    const owner = existsSync(ownerFile) ? Number(readFileSync(ownerFile, 'utf8')) : Number.NaN;
    if (Number.isFinite(owner) && isAlive(owner)) continue;
    const pidDir = join(runDir, 'pids');
    if (existsSync(pidDir)) {
      for (const f of readdirSync(pidDir)) {
        const pid = Number(readFileSync(join(pidDir, f), 'utf8'));
        if (Number.isFinite(pid) && isAlive(pid)) process.kill(pid, 'SIGKILL');
      }
    }
    rmSync(runDir, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls check until it returns a value other than undefined, or throws after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  { timeoutMs = 60_000, intervalMs = 250 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await sleep(intervalMs);
  }
}

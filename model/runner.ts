import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { operatorNodeFlags } from '../operator/node-flags.ts';
import { outOfMemory, type RunnerReply, type RunnerRequest } from './runner-protocol.ts';

export type RunOutcome =
  | RunnerReply
  | { ok: false; stage: 'timeout'; message: string }
  | { ok: false; stage: 'crash'; message: string };

export interface ModelRunner {
  /**
   * Loads and runs a model in a child process; never throws for anything the model file does. An
   * aborted signal ends the child (or the wait for a slot) and rejects with the signal's reason.
   */
  run(
    model: RunnerRequest['model'],
    request: Omit<RunnerRequest, 'model'>,
    signal?: AbortSignal,
  ): Promise<RunOutcome>;
}

let prlimitPath: string | null | undefined;
/** util-linux's prlimit, which bounds a child's memory by RLIMIT_DATA; null where it is missing. */
function prlimit(): string | null {
  if (prlimitPath === undefined) {
    try {
      execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
      prlimitPath = 'prlimit';
    } catch {
      prlimitPath = null;
    }
  }
  return prlimitPath;
}

/** Whether runs are held to their memory bound by RLIMIT_DATA (prlimit is on this machine). */
export const nativeMemoryBound = () => prlimit() !== null;

/**
 * Address space Node 24 and onnxruntime reserve in their data segment before any model is loaded
 * (about 600 MiB, mostly never touched); the memory bound is this plus the model's budget.
 */
const runtimeReserveMiB = 768;

/**
 * Runs models in child processes, at most `concurrency` at once, each ended after timeoutMs and held
 * to memoryMiB beyond the runtime's own reservations: the V8 heap by its flag, and every allocation,
 * onnxruntime's native ones included, by RLIMIT_DATA (through prlimit, where the machine has it). A
 * file that crashes onnxruntime, hangs it or exhausts its memory ends only its child, and an
 * allocation past the bound is reported as such.
 */
export function createModelRunner(
  options: { concurrency?: number; timeoutMs?: number; memoryMiB?: number } = {},
): ModelRunner {
  const memoryMiB = options.memoryMiB ?? 2048;
  const concurrency = options.concurrency ?? 1;
  const timeoutMs = options.timeoutMs ?? 60_000;
  let active = 0;
  const waiting: Array<() => void> = [];
  // A released slot passes straight to the next waiter, so no caller can slip in between.
  const acquire = (signal: AbortSignal | undefined) => {
    signal?.throwIfAborted();
    if (active < concurrency) {
      active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const take = () => {
        signal?.removeEventListener('abort', giveUp);
        resolve();
      };
      const giveUp = () => {
        waiting.splice(waiting.indexOf(take), 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', giveUp, { once: true });
      waiting.push(take);
    });
  };
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else active--;
  };

  const runOnce = (
    model: RunnerRequest['model'],
    request: Omit<RunnerRequest, 'model'>,
    signal: AbortSignal | undefined,
  ) =>
    new Promise<RunOutcome>((resolve, reject) => {
      const node = [
        process.execPath,
        ...operatorNodeFlags,
        `--max-old-space-size=${memoryMiB}`,
        join(import.meta.dirname, 'runner-process.ts'),
      ];
      const limit = prlimit();
      // prlimit execs node in its own place, so the IPC channel passes straight through.
      const dataBytes = (memoryMiB + runtimeReserveMiB) * 2 ** 20;
      const [command, ...args] = limit ? [limit, `--data=${dataBytes}`, ...node] : node;
      const child = spawn(command as string, args, {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        serialization: 'advanced',
      });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-2000);
      });
      let settled = false;
      const end = () => {
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', abort);
        if (child.exitCode === null) child.kill('SIGKILL');
      };
      const finish = (outcome: RunOutcome) => {
        if (settled) return;
        end();
        resolve(outcome);
      };
      const abort = () => {
        if (settled) return;
        end();
        reject(signal?.reason);
      };
      const timer = setTimeout(
        () =>
          finish({
            ok: false,
            stage: 'timeout',
            message: `loading and testing the model took longer than ${timeoutMs / 1000} s`,
          }),
        timeoutMs,
      );
      if (signal?.aborted) abort();
      else signal?.addEventListener('abort', abort, { once: true });
      child.once('message', (reply: RunnerReply) => finish(reply));
      // 'close', not 'exit': by then stderr is read to its end, and with it the reason a child died.
      child.once('close', (code, exitSignal) => {
        const lastLine = stderr.trim().split('\n').at(-1) ?? '';
        finish(
          outOfMemory.test(stderr)
            ? {
                ok: false,
                stage: 'memory',
                message: `the model needs more than the ${memoryMiB} MiB a validation may use: ${lastLine}`,
              }
            : {
                ok: false,
                stage: 'crash',
                message: `the model runner ended (${exitSignal ?? `exit code ${code}`}) while loading the model${lastLine ? `: ${lastLine}` : ''}`,
              },
        );
      });
      child.once('error', (err) => finish({ ok: false, stage: 'crash', message: err.message }));
      try {
        child.send({ ...request, model });
      } catch (err) {
        finish({
          ok: false,
          stage: 'crash',
          message: `could not hand the model to its runner: ${(err as Error).message}`,
        });
      }
    });

  return {
    async run(model, request, signal) {
      await acquire(signal);
      try {
        return await runOnce(model, request, signal);
      } finally {
        release();
      }
    },
  };
}

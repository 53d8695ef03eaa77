import { fork } from 'node:child_process';
import { join } from 'node:path';
import { operatorNodeFlags } from '../operator/node-flags.ts';
import type { RunnerReply, RunnerRequest } from './runner-process.ts';

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
    modelBytes: Uint8Array,
    request: Omit<RunnerRequest, 'model'>,
    signal?: AbortSignal,
  ): Promise<RunOutcome>;
}

/**
 * Runs models in child processes, at most `concurrency` at once, each ended after timeoutMs. A file
 * that crashes onnxruntime, hangs it or exhausts memory ends only its child.
 */
export function createModelRunner(
  options: { concurrency?: number; timeoutMs?: number; maxOldSpaceMiB?: number } = {},
): ModelRunner {
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
    modelBytes: Uint8Array,
    request: Omit<RunnerRequest, 'model'>,
    signal: AbortSignal | undefined,
  ) =>
    new Promise<RunOutcome>((resolve, reject) => {
      const child = fork(join(import.meta.dirname, 'runner-process.ts'), [], {
        execArgv: [...operatorNodeFlags, `--max-old-space-size=${options.maxOldSpaceMiB ?? 512}`],
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
      child.once('exit', (code, exitSignal) =>
        finish({
          ok: false,
          stage: 'crash',
          message: `the model runner ended (${exitSignal ?? `exit code ${code}`}) while loading the model${stderr ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`,
        }),
      );
      child.once('error', (err) => finish({ ok: false, stage: 'crash', message: err.message }));
      try {
        child.send({ ...request, model: modelBytes });
      } catch (err) {
        finish({
          ok: false,
          stage: 'crash',
          message: `could not hand the model to its runner: ${(err as Error).message}`,
        });
      }
    });

  return {
    async run(modelBytes, request, signal) {
      await acquire(signal);
      try {
        return await runOnce(modelBytes, request, signal);
      } finally {
        release();
      }
    },
  };
}

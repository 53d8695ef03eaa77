import { fork } from 'node:child_process';
import { join } from 'node:path';
import { operatorNodeFlags } from '../../operator/node-flags.ts';
import type { RunnerReply, RunnerRequest } from './runner-process.ts';

export type RunOutcome =
  | RunnerReply
  | { ok: false; stage: 'timeout'; message: string }
  | { ok: false; stage: 'crash'; message: string };

export interface ModelRunner {
  /** Loads and runs a model in a child process; never throws for anything the model file does. */
  run(modelBytes: Uint8Array, request: Omit<RunnerRequest, 'model'>): Promise<RunOutcome>;
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
  const acquire = async () => {
    if (active < concurrency) {
      active++;
      return;
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else active--;
  };

  const runOnce = (modelBytes: Uint8Array, request: Omit<RunnerRequest, 'model'>) =>
    new Promise<RunOutcome>((resolve) => {
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
      const finish = (outcome: RunOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (child.exitCode === null) child.kill('SIGKILL');
        resolve(outcome);
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
      child.once('message', (reply: RunnerReply) => finish(reply));
      child.once('exit', (code, signal) =>
        finish({
          ok: false,
          stage: 'crash',
          message: `the model runner ended (${signal ?? `exit code ${code}`}) while loading the model${stderr ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`,
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
    async run(modelBytes, request) {
      await acquire();
      try {
        return await runOnce(modelBytes, request);
      } finally {
        release();
      }
    },
  };
}

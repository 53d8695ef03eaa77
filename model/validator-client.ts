import { type ChildProcess, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { keepAliveAgent, send } from '../operator/http.ts';
import type { ValidationRequest, ValidationResponse } from './validation-protocol.ts';

/** The validator could not judge the file this time (down, busy, restarting): try again later. */
export class ValidatorUnavailable extends Error {
  override name = 'ValidatorUnavailable';
}

export interface ValidatorClient {
  /**
   * Asks the validator to fetch and judge a file; resolves with its answer. Rejects with
   * ValidatorUnavailable when it cannot answer, and with the signal's reason when aborted.
   */
  validate(request: ValidationRequest, signal: AbortSignal): Promise<ValidationResponse>;
}

/** A client of the validator at baseUrl(), read at each request (a restarted local one moves port). */
/**
 * The longest one validation may take, queueing included: past it the validator is taken to be stuck
 * (or the connection half-open) and the model is told as retrying.
 */
const deadlineMs = 20 * 60_000;

export function createValidatorClient(baseUrl: () => string | undefined): ValidatorClient {
  let current: { base: string; agent: ReturnType<typeof keepAliveAgent> } | undefined;
  return {
    async validate(request, callerSignal) {
      const base = baseUrl();
      if (!base) throw new ValidatorUnavailable('the validator is starting');
      // One agent for the validator where it is now (a restarted local one moves port).
      if (current?.base !== base) {
        current?.agent.destroy();
        current = { base, agent: keepAliveAgent(base) };
      }
      const { agent } = current;
      const deadline = AbortSignal.timeout(deadlineMs);
      const signal = AbortSignal.any([callerSignal, deadline]);
      let response: Awaited<ReturnType<typeof send>>;
      let text: string;
      try {
        response = await send(new URL(`${base}/v1/validate`), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(request),
          agent,
          signal,
        });
        text = await response.text();
      } catch (err) {
        callerSignal.throwIfAborted();
        if (deadline.aborted)
          throw new ValidatorUnavailable(
            `the validator gave no answer within ${deadlineMs / 60_000} minutes`,
          );
        throw new ValidatorUnavailable(`the validator did not answer: ${(err as Error).message}`);
      }
      if (response.status === 200) return JSON.parse(text) as ValidationResponse;
      let message = text;
      try {
        message = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {}
      throw new ValidatorUnavailable(`the validator answered ${response.status}: ${message.slice(0, 300)}`);
    },
  };
}

export interface LocalValidator {
  /** Where it listens now; undefined while it (re)starts. */
  url(): string | undefined;
  stop(): Promise<void>;
}

/**
 * Starts workloads/validator as a child process and keeps it running (restarted with backoff when it
 * dies), for an operator run outside a cluster: the sandbox, tests, a developer's machine. Its
 * environment holds only its own settings: no kubeconfig, no cluster credentials. In a cluster the
 * chart runs it as a container of its own instead, and the operator is given its URL.
 */
export async function startLocalValidator(
  options: { settings?: Record<string, string>; onLog?: (line: string) => void } = {},
): Promise<LocalValidator> {
  const entry = join(import.meta.dirname, '..', 'workloads', 'validator', 'main.ts');
  let child: ChildProcess | undefined;
  let url: string | undefined;
  let stopped = false;
  let restarts = 0;
  let firstStart: { resolve: () => void; reject: (err: Error) => void } | undefined;

  const launch = () => {
    const proc = spawn(process.execPath, [entry], {
      cwd: tmpdir(),
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        AURORA_VALIDATOR_PORT: '0',
        AURORA_VALIDATOR_EXIT_WITH_STDIN: 'true',
        ...options.settings,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child = proc;
    const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      options.onLog?.(line);
      if (url) return;
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'validator listening' && entry.port) {
          url = `http://127.0.0.1:${entry.port}`;
          restarts = 0;
          firstStart?.resolve();
          firstStart = undefined;
        }
      } catch {}
    });
    proc.stderr?.on('data', (chunk: Buffer) => options.onLog?.(chunk.toString().trimEnd()));
    proc.once('exit', (code, signal) => {
      url = undefined;
      child = undefined;
      if (stopped) return;
      if (firstStart) {
        firstStart.reject(new Error(`the validator exited at start (${signal ?? `exit code ${code}`})`));
        firstStart = undefined;
        return;
      }
      // Crashed: the operator reports validations as retrying meanwhile, and it comes back.
      const delayMs = Math.min(30_000, 500 * 2 ** restarts++);
      setTimeout(() => {
        if (!stopped) launch();
      }, delayMs).unref();
    });
  };

  await new Promise<void>((resolve, reject) => {
    firstStart = { resolve, reject };
    launch();
  });
  return {
    url: () => url,
    async stop() {
      stopped = true;
      const proc = child;
      if (!proc || proc.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}

// An onnxruntime session on a thread of its own. onnxruntime-node runs a model synchronously on the
// thread that calls it, so a session on the main thread stops everything else there while the model
// runs: health probes and metrics wait, and a queue consumer cannot read or write Redis. On its own
// thread, the model runs while the main thread serves, and a consumer prepares one batch while the
// model runs another. Runs are served one at a time, in order, so concurrent callers do not fight over
// the cores onnxruntime's own threads already use.
import { Worker } from 'node:worker_threads';
import type { ModelSignature } from './contract.ts';
import type { InputData } from './tensors.ts';

type Skipped = Array<{ provider: string; message: string }>;

/** What crosses to the thread: the model to open, a run, or the request to release the session. */
export type ThreadRequest =
  | { kind: 'open'; bytes: Uint8Array; providers: string[] }
  | { kind: 'run'; id: number; inputName: string; outputName: string; input: InputData }
  | { kind: 'release' };

/** What comes back: the session opened (or why not), a run's output (or its error), the release. */
export type ThreadReply =
  | { kind: 'opened'; ok: true; provider: string; signature: ModelSignature; skipped: Skipped }
  | { kind: 'opened'; ok: false; message: string; skipped: Skipped }
  | { kind: 'ran'; id: number; ok: true; output?: { data: ArrayLike<unknown>; dims: readonly number[] } }
  | { kind: 'ran'; id: number; ok: false; message: string }
  | { kind: 'released' };

export interface ThreadedSession {
  provider: string;
  signature: ModelSignature;
  /** Runs the model on one input; resolves with the named output (undefined when the model has none). */
  run(
    inputName: string,
    input: InputData,
    outputName: string,
  ): Promise<{ data: ArrayLike<unknown>; dims: readonly number[] } | undefined>;
  /** Releases the session and ends the thread; calling it again waits for the same end. */
  close(): Promise<void>;
}

type OpenedReply = Extract<ThreadReply, { kind: 'opened' }>;
type RanReply = Extract<ThreadReply, { kind: 'ran' }>;

export type OpenedOnThread =
  | { ok: true; session: ThreadedSession; skipped: Skipped }
  | { ok: false; message: string; skipped: Skipped };

/**
 * Opens the model on a new thread with the first execution provider that loads it (as openSession
 * does). The bytes move to the thread without a copy (the caller must not use them afterwards), and
 * the thread lets go of them once onnxruntime holds the model. `onLost` hears of a thread that ended
 * without close(): from then on every run fails, so a server should stop rather than stay up useless.
 */
export async function openSessionOnThread(
  bytes: Uint8Array,
  providers: readonly string[],
  options: { onLost?: (err: Error) => void } = {},
): Promise<OpenedOnThread> {
  // Only a whole ArrayBuffer can move; a view into a larger or shared one (a pooled Buffer) is copied.
  const own =
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer
      ? bytes
      : new Uint8Array(bytes);
  const worker = new Worker(new URL('./session-thread-main.ts', import.meta.url));
  const pending = new Map<number, { resolve: (r: RanReply) => void; reject: (e: Error) => void }>();
  let ended: Error | undefined;
  let closing: Promise<void> | undefined;
  let nextId = 1;
  let onOpened: ((r: OpenedReply) => void) | undefined;
  let onReleased: (() => void) | undefined;
  const end = (err: Error) => {
    if (ended) return;
    ended = err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    onOpened?.({ kind: 'opened', ok: false, message: err.message, skipped: [] });
    onReleased?.();
    if (!closing && !onOpened) options.onLost?.(err);
  };
  worker.on('message', (reply: ThreadReply) => {
    if (reply.kind === 'opened') onOpened?.(reply);
    else if (reply.kind === 'released') onReleased?.();
    else {
      const waiting = pending.get(reply.id);
      pending.delete(reply.id);
      waiting?.resolve(reply);
    }
  });
  worker.on('messageerror', (err) =>
    end(new Error(`a reply from the model thread was unreadable: ${err.message}`)),
  );
  worker.on('error', (err) => end(new Error(`the model thread failed: ${err.message}`)));
  worker.on('exit', (code) => end(new Error(`the model thread ended (exit code ${code})`)));
  const opened = await new Promise<OpenedReply>((resolve) => {
    onOpened = resolve;
    const open: ThreadRequest = { kind: 'open', bytes: own, providers: [...providers] };
    worker.postMessage(open, [own.buffer as ArrayBuffer]);
  });
  onOpened = undefined;
  if (!opened.ok) {
    closing = worker.terminate().then(() => {});
    await closing;
    return { ok: false, message: opened.message, skipped: opened.skipped };
  }
  const session: ThreadedSession = {
    provider: opened.provider,
    signature: opened.signature,
    run(inputName, input, outputName) {
      if (ended) return Promise.reject(ended);
      const id = nextId++;
      return new Promise<RanReply>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        try {
          const request: ThreadRequest = { kind: 'run', id, inputName, outputName, input };
          worker.postMessage(request);
        } catch (err) {
          pending.delete(id);
          reject(err as Error);
        }
      }).then((reply) => {
        if (!reply.ok) throw new Error(reply.message);
        return reply.output;
      });
    },
    close() {
      closing ??= (async () => {
        if (!ended) {
          // Released after the runs sent before it (the thread serves in order), then the thread goes.
          await Promise.race([
            new Promise<void>((resolve) => {
              onReleased = resolve;
              worker.postMessage({ kind: 'release' } satisfies ThreadRequest);
            }),
            new Promise((resolve) => setTimeout(resolve, 5_000).unref()),
          ]);
        }
        await worker.terminate();
      })();
      return closing;
    },
  };
  return { ok: true, session, skipped: opened.skipped };
}

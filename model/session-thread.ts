// An onnxruntime session on a thread of its own. onnxruntime-node runs a model synchronously on the
// thread that calls it, so a session on the main thread stops everything else there while the model
// runs: health probes and metrics wait, and a queue consumer cannot read or write Redis. On its own
// thread, the model runs while the main thread serves, and a consumer prepares one batch while the
// model runs another. Runs are served one at a time, in order, so concurrent callers do not fight over
// the cores onnxruntime's own threads already use.
import { Worker } from 'node:worker_threads';
import type { ModelSignature } from './contract.ts';
import type { InputData } from './tensors.ts';

/** What crosses to the thread: a run, or the request to release the session. */
export type ThreadRequest =
  | { kind: 'run'; id: number; inputName: string; outputName: string; input: InputData }
  | { kind: 'release' };

/** What comes back: the session opened (or why not), a run's output (or its error), the release. */
export type ThreadReply =
  | {
      kind: 'opened';
      ok: true;
      provider: string;
      signature: ModelSignature;
      skipped: Array<{ provider: string; message: string }>;
    }
  | { kind: 'opened'; ok: false; message: string; skipped: Array<{ provider: string; message: string }> }
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
  /** Releases the session and ends the thread. */
  close(): Promise<void>;
}

export type OpenedOnThread =
  | { ok: true; session: ThreadedSession; skipped: Array<{ provider: string; message: string }> }
  | { ok: false; message: string; skipped: Array<{ provider: string; message: string }> };

/**
 * Opens the model on a new thread with the first execution provider that loads it (as openSession
 * does). The bytes move to the thread without a copy: the caller must not use them afterwards.
 */
export async function openSessionOnThread(
  bytes: Uint8Array,
  providers: readonly string[],
): Promise<OpenedOnThread> {
  // Only a whole ArrayBuffer can move; a view into a larger one (a pooled Buffer) is copied first.
  const own =
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer
      ? bytes
      : new Uint8Array(bytes);
  const worker = new Worker(new URL('./session-thread-main.ts', import.meta.url), {
    workerData: { bytes: own, providers: [...providers] },
    transferList: [own.buffer as ArrayBuffer],
  });
  const pending = new Map<number, { resolve: (r: ThreadReply) => void; reject: (e: Error) => void }>();
  let ended: Error | undefined;
  let nextId = 1;
  let onOpened: ((r: ThreadReply) => void) | undefined;
  let onReleased: (() => void) | undefined;
  const end = (err: Error) => {
    ended ??= err;
    for (const p of pending.values()) p.reject(ended);
    pending.clear();
    onOpened?.({ kind: 'opened', ok: false, message: ended.message, skipped: [] });
    onReleased?.();
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
  worker.on('error', (err) => end(new Error(`the model thread failed: ${err.message}`)));
  worker.on('exit', (code) => end(new Error(`the model thread ended (exit code ${code})`)));
  const opened = await new Promise<ThreadReply>((resolve) => {
    onOpened = resolve;
  });
  onOpened = undefined;
  if (opened.kind !== 'opened' || !opened.ok) {
    await worker.terminate();
    return opened.kind === 'opened' && !opened.ok
      ? { ok: false, message: opened.message, skipped: opened.skipped }
      : { ok: false, message: 'the model thread did not open the model', skipped: [] };
  }
  const post = (request: ThreadRequest) => worker.postMessage(request);
  const session: ThreadedSession = {
    provider: opened.provider,
    signature: opened.signature,
    run(inputName, input, outputName) {
      if (ended) return Promise.reject(ended);
      const id = nextId++;
      return new Promise<ThreadReply>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        post({ kind: 'run', id, inputName, outputName, input });
      }).then((reply) => {
        if (reply.kind !== 'ran') throw new Error('the model thread answered out of turn');
        if (!reply.ok) throw new Error(reply.message);
        return reply.output;
      });
    },
    async close() {
      if (!ended) {
        // The session is released before the thread goes, so onnxruntime frees what it holds in order.
        await Promise.race([
          new Promise<void>((resolve) => {
            onReleased = resolve;
            post({ kind: 'release' });
          }),
          new Promise((resolve) => setTimeout(resolve, 5_000).unref()),
        ]);
      }
      await worker.terminate();
    },
  };
  return { ok: true, session, skipped: opened.skipped };
}

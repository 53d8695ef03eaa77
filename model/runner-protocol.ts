// What the validation runner and the process that spawns it say to each other over IPC. Kept apart
// from runner-process.ts, which takes over its process's IPC channel as soon as it is loaded.
import type { ModelSignature } from './contract.ts';
import type { ElementType } from './tensors.ts';

export interface RunnerRequest {
  /** The model file (large ones) or its bytes (sent over IPC with advanced serialisation: no base64). */
  model: { path: string } | Uint8Array;
  executionProviders: string[];
  /** Vectors to label, all of them, in one batch. */
  vectors: number[][];
  inputName?: string;
  outputName?: string;
  elementType?: ElementType;
  /** Values per vector the output must hold (the contract's labels). */
  outputWidth?: number;
  /** Single-vector runs for the latency figures. */
  latencyRuns: number;
}

export type RunnerReply =
  | {
      ok: true;
      signature: ModelSignature;
      executionProvider: string;
      probabilities?: number[][];
      latenciesMs?: number[];
      sessionMemoryMiB: number;
    }
  | { ok: false; stage: 'load' | 'run' | 'memory'; message: string };

/** How native and JavaScript allocation failures read, whichever layer reports them. */
export const outOfMemory = /bad_alloc|failed to allocate|allocation failed|out of memory|ENOMEM/i;

/** A failure reply: an allocation failure is told apart, whatever stage it struck in. */
export const failure = (stage: 'load' | 'run', message: string): RunnerReply => ({
  ok: false,
  stage: outOfMemory.test(message) ? 'memory' : stage,
  message: message.slice(0, 500),
});

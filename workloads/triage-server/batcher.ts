import { type Clock, systemClock } from '../../operator/clock.ts';

/**
 * Groups concurrent requests into one model run: a batch goes when it is full or when the first
 * request in it has waited batchWindowMs, whichever comes first. Each caller gets its own row back.
 */
export interface MicroBatcher<In, Out> {
  submit(input: In): Promise<Out>;
}

export function createMicroBatcher<In, Out>(options: {
  maxBatchSize: number;
  batchWindowMs: number;
  run: (inputs: In[]) => Promise<Out[]>;
  clock?: Clock;
  onBatch?: (size: number) => void;
}): MicroBatcher<In, Out> {
  const clock = options.clock ?? systemClock;
  let pending: Array<{ input: In; resolve: (o: Out) => void; reject: (e: unknown) => void }> = [];
  let timer: unknown;

  const flush = () => {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
    const batch = pending;
    pending = [];
    if (batch.length === 0) return;
    options.onBatch?.(batch.length);
    options.run(batch.map((p) => p.input)).then(
      (outputs) => {
        batch.forEach((p, i) => {
          const out = outputs[i];
          if (out === undefined) p.reject(new Error('the model returned fewer rows than it was given'));
          else p.resolve(out);
        });
      },
      (err: unknown) => {
        for (const p of batch) p.reject(err);
      },
    );
  };

  return {
    submit(input) {
      return new Promise<Out>((resolve, reject) => {
        pending.push({ input, resolve, reject });
        if (pending.length >= options.maxBatchSize || options.batchWindowMs === 0) flush();
        else if (timer === undefined) timer = clock.setTimeout(flush, options.batchWindowMs);
      });
    },
  };
}

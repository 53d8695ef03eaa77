import { type Clock, systemClock } from '../../operator/clock.ts';

/**
 * Groups concurrent requests into model runs. One run at a time: requests that arrive while the model
 * runs wait for it and then go together, at once, so a busy server batches by itself and nobody waits
 * on a timer. An idle model sends a batch when it is full, or when batchWindowMs has passed since its
 * first request (0: as soon as the event loop has read what arrived with it). Each caller gets its row.
 */
export interface MicroBatcher<In, Out> {
  submit(input: In): Promise<Out>;
}

interface Waiting<In, Out> {
  input: In;
  resolve: (o: Out) => void;
  reject: (e: unknown) => void;
}

export function createMicroBatcher<In, Out>(options: {
  maxBatchSize: number;
  batchWindowMs: number;
  run: (inputs: In[]) => Promise<Out[]>;
  clock?: Clock;
  onBatch?: (size: number) => void;
}): MicroBatcher<In, Out> {
  const clock = options.clock ?? systemClock;
  let pending: Array<Waiting<In, Out>> = [];
  let running = false;
  let timer: unknown;
  let immediate: NodeJS.Immediate | undefined;

  const cancelScheduled = () => {
    if (timer !== undefined) clock.clearTimeout(timer);
    if (immediate !== undefined) clearImmediate(immediate);
    timer = undefined;
    immediate = undefined;
  };

  const flush = () => {
    cancelScheduled();
    if (running || pending.length === 0) return;
    const batch = pending.slice(0, options.maxBatchSize);
    pending = pending.slice(batch.length);
    running = true;
    options.onBatch?.(batch.length);
    options
      .run(batch.map((p) => p.input))
      .then(
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
      )
      .finally(() => {
        running = false;
        // Those who came during the run have waited already: they go now, together.
        flush();
      });
  };

  const schedule = () => {
    if (running || timer !== undefined || immediate !== undefined) return;
    if (pending.length >= options.maxBatchSize) flush();
    else if (options.batchWindowMs === 0) immediate = setImmediate(flush);
    else timer = clock.setTimeout(flush, options.batchWindowMs);
  };

  return {
    submit(input) {
      return new Promise<Out>((resolve, reject) => {
        pending.push({ input, resolve, reject });
        if (pending.length >= options.maxBatchSize && !running) flush();
        else schedule();
      });
    },
  };
}

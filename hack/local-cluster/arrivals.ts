// A small arrival generator for the sandbox: synthetic patients (drawn from the example model's golden
// vectors, no real person) added to a CareQueue's category streams in waves, so a person watching sees
// the queue fill and the consumers scale out and back in. Prints the queue now and then.
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { exampleModelFiles } from '../example-model/generate.ts';
import { exampleModelSpec } from './triage-servers.ts';

/** Share of arrivals per Manchester category, highest acuity first (an assumption, for the sandbox). */
const mix = [
  ['immediate', 0.01],
  ['very-urgent', 0.11],
  ['urgent', 0.37],
  ['standard', 0.44],
  ['non-urgent', 0.07],
] as const;

export function startArrivalGenerator(options: {
  redisUrl: string;
  namespace: string;
  queue: string;
  /** One line on the queue and the consumers, printed every reportEveryMs. */
  status: () => Promise<string>;
  log: (line: string) => void;
  /** A wave from quiet to busy and back takes this long. */
  periodMs?: number;
  reportEveryMs?: number;
}) {
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  const names = exampleModelSpec().inputs.features.map((f) => f.name);
  const vectors = readFileSync(exampleModelFiles.goldenVectors, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { features: number[] }).features);
  const periodMs = options.periodMs ?? 6 * 60_000;
  const startedAt = Date.now();
  let added = 0;
  let stopped = false;
  // Between 0.5 and 9 arrivals a second: at the top of the wave the pool's consumers (2 a second each
  // in the sandbox) are too few, at the bottom too many.
  const rateAt = (ms: number) => 0.5 + 8.5 * (0.5 - 0.5 * Math.cos((2 * Math.PI * ms) / periodMs));
  const tick = setInterval(() => {
    if (stopped) return;
    const expected = rateAt(Date.now() - startedAt) / 4;
    let count = Math.floor(expected) + (Math.random() < expected % 1 ? 1 : 0);
    const pipeline = redis.pipeline();
    for (; count > 0; count--) {
      const pick = Math.random();
      let below = 0;
      const category =
        mix.find(([, share]) => {
          below += share;
          return pick < below;
        })?.[0] ?? 'standard';
      const vector = vectors[Math.floor(Math.random() * vectors.length)] ?? [];
      const features = JSON.stringify(Object.fromEntries(names.map((n, i) => [n, vector[i]])));
      pipeline.xadd(`aurora:${options.namespace}:${options.queue}:${category}`, '*', 'features', features);
      added++;
    }
    void pipeline.exec().catch(() => {});
  }, 250);
  const report = setInterval(() => {
    if (stopped) return;
    const rate = rateAt(Date.now() - startedAt).toFixed(1);
    void options
      .status()
      .then((line) => options.log(`  [arrivals] ${added} added, now ${rate}/s; ${line}`))
      .catch(() => {});
  }, options.reportEveryMs ?? 30_000);
  return {
    async stop() {
      stopped = true;
      clearInterval(tick);
      clearInterval(report);
      const keys = await redis.keys(`aurora:${options.namespace}:${options.queue}:*`).catch(() => []);
      if (keys.length > 0) await redis.del(...keys).catch(() => {});
      redis.disconnect();
    },
  };
}

import { Redis } from 'ioredis';
import { exampleGoldenFeatures } from '../example-model/generate.ts';
import { exampleModelSpec } from './triage-servers.ts';

/**
 * Share of arrivals per Manchester category, highest acuity first: an assumption of the kind Manchester
 * Triage audits report (1 % red, 11 % orange, 37 % yellow, 44 % green, 7 % blue), not a cited figure.
 */
export const manchesterMix = [
  { name: 'immediate', share: 0.01 },
  { name: 'very-urgent', share: 0.11 },
  { name: 'urgent', share: 0.37 },
  { name: 'standard', share: 0.44 },
  { name: 'non-urgent', share: 0.07 },
] as const;

/** The category a uniform draw in [0, 1) falls in, by cumulative share (the last when rounding leaves a gap). */
export function pickCategory(shares: readonly { share: number }[], draw: number): number {
  let below = 0;
  const index = shares.findIndex((c) => {
    below += c.share;
    return draw < below;
  });
  return index < 0 ? shares.length - 1 : index;
}

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
  const vectors = exampleGoldenFeatures();
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
      const category = manchesterMix[pickCategory(manchesterMix, Math.random())]?.name;
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

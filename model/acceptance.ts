import type { TriageModelSpec } from '../crds/triagemodel.ts';

export interface GoldenVector {
  features: number[];
  expectedLabel: string;
}

/**
 * Reads golden vectors from JSON lines. A bad line is named by its number and what is wrong with it,
 * never by its values (they may be patient-like data).
 */
export function parseGoldenVectors(
  text: string,
  featureCount: number,
  labels: readonly string[],
): { vectors: GoldenVector[] } | { error: string } {
  const vectors: GoldenVector[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]?.trim();
    if (!line) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return { error: `golden vectors line ${i + 1} is not JSON` };
    }
    const v = parsed as Partial<GoldenVector>;
    if (!Array.isArray(v.features) || !v.features.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      return { error: `golden vectors line ${i + 1}: features must be a list of numbers` };
    }
    if (v.features.length !== featureCount) {
      return {
        error: `golden vectors line ${i + 1} has ${v.features.length} features, the spec declares ${featureCount}`,
      };
    }
    if (typeof v.expectedLabel !== 'string' || !labels.includes(v.expectedLabel)) {
      return { error: `golden vectors line ${i + 1}: expectedLabel must be one of ${labels.join(', ')}` };
    }
    vectors.push({ features: v.features, expectedLabel: v.expectedLabel });
  }
  if (vectors.length === 0) return { error: 'the golden vectors are empty' };
  return { vectors };
}

export interface AcceptanceResult {
  passed: boolean;
  vectors: number;
  accuracy: number;
  recall: Array<{ label: string; recall: number }>;
  /** Each unmet requirement, in words that say what to fix. */
  failures: string[];
}

/** The value below which p percent of the sorted samples fall (nearest rank). */
export function percentile(sortedAscending: readonly number[], p: number): number {
  if (sortedAscending.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sortedAscending.length);
  return sortedAscending[Math.min(sortedAscending.length, Math.max(1, rank)) - 1] as number;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * Scores predictions (one probability row per vector, in label order) against the acceptance tests:
 * recall floors per label, overall accuracy, and latency limits.
 */
export function scoreAcceptance(
  acceptance: TriageModelSpec['acceptance'],
  labels: readonly string[],
  vectors: readonly GoldenVector[],
  probabilities: readonly number[][],
  latency?: { p50Ms: number; p99Ms: number },
): AcceptanceResult {
  const totals = new Map<string, number>();
  const hits = new Map<string, number>();
  let correct = 0;
  vectors.forEach((v, i) => {
    const row = probabilities[i] ?? [];
    const predicted = labels[argmax(row)];
    totals.set(v.expectedLabel, (totals.get(v.expectedLabel) ?? 0) + 1);
    if (predicted === v.expectedLabel) {
      correct++;
      hits.set(v.expectedLabel, (hits.get(v.expectedLabel) ?? 0) + 1);
    }
  });
  const recall = labels
    .filter((l) => totals.has(l))
    .map((label) => ({ label, recall: (hits.get(label) ?? 0) / (totals.get(label) ?? 1) }));
  const accuracy = vectors.length > 0 ? correct / vectors.length : 0;
  const failures: string[] = [];
  for (const floor of acceptance.minRecall) {
    const total = totals.get(floor.label) ?? 0;
    if (total === 0) {
      failures.push(
        `no golden vector expects '${floor.label}', so its recall floor cannot be checked: add vectors`,
      );
      continue;
    }
    const r = (hits.get(floor.label) ?? 0) / total;
    if (r < floor.min) {
      failures.push(
        `recall of '${floor.label}' is ${pct(r)} (${hits.get(floor.label) ?? 0} of ${total}), below the floor of ${pct(floor.min)}`,
      );
    }
  }
  if (acceptance.minAccuracy !== undefined && accuracy < acceptance.minAccuracy) {
    failures.push(`accuracy is ${pct(accuracy)}, below the minimum of ${pct(acceptance.minAccuracy)}`);
  }
  const limits = acceptance.maxLatencyMs;
  if (latency && limits?.p50 !== undefined && latency.p50Ms > limits.p50) {
    failures.push(`median latency is ${latency.p50Ms.toFixed(2)} ms, above the limit of ${limits.p50} ms`);
  }
  if (latency && limits?.p99 !== undefined && latency.p99Ms > limits.p99) {
    failures.push(`p99 latency is ${latency.p99Ms.toFixed(2)} ms, above the limit of ${limits.p99} ms`);
  }
  return { passed: failures.length === 0, vectors: vectors.length, accuracy, recall, failures };
}

/** The index of the largest value: a loop, since spreading a long row into Math.max overflows the stack. */
export function argmax(row: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if ((row[i] as number) > (row[best] as number)) best = i;
  return best;
}

// Every kind's Argo CD health check against its health_test.yaml, as Argo CD's own tests run them: each
// input (an object captured from the real controllers by argocd-health.test.ts) through the real
// runner, gopher-lua v1.1.2 with Argo CD's restrictions, and the status and message it must give.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { healthChecksDir, healthKinds } from '../../hack/argocd-health/generate.ts';
import { type HealthStatus, health } from '../harness/argocd-health.ts';

interface HealthTest {
  healthStatus: HealthStatus;
  inputPath: string;
}

const testsOf = (kind: string): HealthTest[] =>
  parse(readFileSync(join(healthChecksDir, kind, 'health_test.yaml'), 'utf8')).tests;
const cases = healthKinds.flatMap((kind) => testsOf(kind).map((t) => ({ kind, ...t })));

describe('the Argo CD health checks against their health_test.yaml', () => {
  it.each(cases)('$kind $inputPath: $healthStatus.status', async ({ kind, healthStatus, inputPath }) => {
    const resource = parse(readFileSync(join(healthChecksDir, kind, inputPath), 'utf8'));
    expect(resource).toMatchObject({ apiVersion: 'aurora.health/v1alpha1', kind });
    expect(await health(kind, resource)).toEqual(healthStatus);
  });

  it.each(healthKinds)(
    '%s: at least four fixtures, each in health_test.yaml, each expecting a message',
    (kind) => {
      const files = readdirSync(join(healthChecksDir, kind, 'testdata')).map((f) => `testdata/${f}`);
      const referenced = testsOf(kind).map((t) => t.inputPath);
      expect(files.length).toBeGreaterThanOrEqual(4);
      expect([...files].sort()).toEqual([...new Set(referenced)].sort());
      for (const path of referenced) expect(existsSync(join(healthChecksDir, kind, path)), path).toBe(true);
      for (const t of testsOf(kind)) expect(t.healthStatus.message, t.inputPath).toBeTruthy();
    },
  );

  it.each(healthKinds)('%s: the fixtures cover healthy, degraded and progressing', (kind) => {
    const statuses = new Set(testsOf(kind).map((t) => t.healthStatus.status));
    expect([...statuses]).toEqual(expect.arrayContaining(['Healthy', 'Degraded', 'Progressing']));
    // A kind with spec.paused shows it as Suspended.
    if (kind === 'CareQueue' || kind === 'HealingPolicy') expect(statuses).toContain('Suspended');
  });
});

// HealingPolicy when what it depends on fails: its audit database stopped (a PostgreSQL of the test's own,
// really stopped and started) and a real Prometheus (built from its Go module) whose answers decide the
// PromQL detector, fed by a small exporter served here.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../hack/local-cluster/control-plane.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import { type LocalPrometheus, startPrometheus } from '../../hack/local-cluster/prometheus.ts';
import { type PrivatePostgres, startPrivatePostgres } from '../../hack/local-cluster/services.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import {
  type HealingTestbed,
  reasonOf,
  selectorFor,
  startHealingTestbed,
  types,
} from '../harness/healing.ts';

let bed: HealingTestbed;
let postgres: PrivatePostgres;
let prometheus: LocalPrometheus;
let exporter: Server;
/** What the exporter says: a value per Deployment name. */
const exported = new Map<string, number>();

beforeAll(async () => {
  postgres = await startPrivatePostgres(await freePort());
  bed = await startHealingTestbed('healing-out', { auditUrl: postgres.url });
  exporter = createServer((_req, res) => {
    const lines = ['# TYPE app_error_ratio gauge'];
    for (const [deployment, value] of exported)
      lines.push(`app_error_ratio{namespace="${bed.namespace}",deployment="${deployment}"} ${value}`);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(`${lines.join('\n')}\n`);
  });
  const port = await freePort();
  await new Promise<void>((r) => exporter.listen(port, '127.0.0.1', r));
  prometheus = await startPrometheus({ targets: [`127.0.0.1:${port}`] });
});

afterAll(async () => {
  await bed?.cleanup();
  await prometheus?.stop();
  exporter?.close();
  await postgres?.cleanup();
});

const guardrails = { maxUnhealthyPercent: 100, cooldownSeconds: 10 };

describe('HealingPolicy when its dependencies fail', () => {
  it('takes no disruptive action while PostgreSQL is stopped, and carries on once it is back', async () => {
    await bed.deployment('pgdown', { labels: { scenario: 'pgdown' } });
    await bed.policy('pgdown', {
      selector: selectorFor('pgdown'),
      detectors: { crashLoop: { restarts: 3 } },
      escalation: [{ action: 'RestartPod', timeoutSeconds: 30 }],
      guardrails,
    });
    await bed.until('audit writable', 'pgdown', (s) =>
      reasonOf(s, 'AuditUnavailable') === 'AuditWritable' ? true : undefined,
    );
    await postgres.stop();
    // Nothing is failing, so nothing needs the trail: the outage shows in status all the same.
    const down = await bed.until('audit unavailable while quiet', 'pgdown', (s) =>
      s.conditions?.find((c) => c.type === 'AuditUnavailable' && c.status === 'True') ? s : undefined,
    );
    expect(reasonOf(down, 'Ready')).toBe('PostgreSQLUnavailable');
    const before = await bed.uids('pgdown');
    bed.fail('app=pgdown', { kind: 'CrashLoop', restarts: 5 });
    await waitFor('seen failing', async () =>
      (await bed.status('pgdown')).unhealthyTargets?.[0]?.waitingFor === 'AuditUnavailable'
        ? true
        : undefined,
    );
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await bed.uids('pgdown')).toEqual(before);

    await postgres.start();
    await bed.until('acted once the trail is back', 'pgdown', (s) =>
      s.recentActions?.[0]?.outcome === 'Done' && reasonOf(s, 'AuditUnavailable') === 'AuditWritable'
        ? true
        : undefined,
    );
    expect(types(await bed.rows('pgdown'))).toEqual([
      'Detected',
      'Intent:RestartPod',
      'Outcome:RestartPod:Done',
    ]);
    expect((await bed.uids('pgdown')).some((u) => before.includes(u))).toBe(false);
  });

  it.concurrent('fires the PromQL detector once the threshold held for its duration', async () => {
    await bed.deployment('prom', { labels: { scenario: 'prom' } });
    exported.set('prom', 0.1);
    await bed.policy('prom', {
      selector: selectorFor('prom'),
      detectors: {
        prometheus: {
          url: prometheus.url,
          query: `app_error_ratio{namespace="${bed.namespace}"}`,
          operator: '>',
          threshold: 0.5,
          forSeconds: 10,
        },
      },
      escalation: [{ action: 'RestartRollout', timeoutSeconds: 30 }],
      guardrails,
    });
    await bed.until('healthy with a value', 'prom', (s) =>
      s.watchedTargets === 1 && (s.unhealthyCount ?? 0) === 0 ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 2_000));
    exported.set('prom', 0.9);
    const crossed = Date.now();
    const detected = await waitFor(
      'detected',
      async () => (await bed.rows('prom')).find((r) => r.type === 'Detected'),
      {
        timeoutMs: 30_000,
      },
    );
    // Not before its 10 s (the first scrape of the new value can take a second).
    expect(detected.atMs - crossed).toBeGreaterThanOrEqual(10_000);
    expect(detected).toMatchObject({ detector: 'prometheus', cause: 'MetricThreshold' });
    await bed.until('rolled out again', 'prom', (s) =>
      s.recentActions?.[0]?.outcome === 'Done' ? true : undefined,
    );
    const d = await bed.client.get<
      KubeObject & { spec: { template: { metadata: { annotations?: Record<string, string> } } } }
    >({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'prom', namespace: bed.namespace },
    });
    expect(d?.spec.template.metadata.annotations?.['kubectl.kubernetes.io/restartedAt']).toBeTruthy();
  });

  it.concurrent('never acts on an empty PromQL result: Unknown holds every action', async () => {
    await bed.deployment('silent', { labels: { scenario: 'silent' } });
    await bed.policy('silent', {
      selector: selectorFor('silent'),
      detectors: {
        crashLoop: { restarts: 3 },
        // The exporter has no series for this Deployment.
        prometheus: {
          url: prometheus.url,
          query: `app_error_ratio{namespace="${bed.namespace}",deployment="silent"}`,
          operator: '>',
          threshold: 0.5,
          forSeconds: 10,
        },
      },
      escalation: [{ action: 'RestartPod', timeoutSeconds: 30 }],
      guardrails,
    });
    const before = await bed.uids('silent');
    bed.fail('app=silent', { kind: 'CrashLoop', restarts: 5 });
    const s = await bed.until('unknown', 'silent', (s) =>
      s.unhealthyTargets?.[0]?.state === 'Unknown' ? s : undefined,
    );
    expect(s.unhealthyTargets?.[0]).toMatchObject({
      waitingFor: 'MetricUnknown',
      waitingMessage: expect.stringContaining('no value'),
    });
    await new Promise((r) => setTimeout(r, 6_000));
    expect(await bed.rows('silent')).toEqual([]);
    expect(await bed.uids('silent')).toEqual(before);
  });
});

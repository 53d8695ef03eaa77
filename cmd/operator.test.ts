import { describe, expect, it } from 'vitest';
import { apiVersion } from '../crds/kinds.ts';
import { createValidatorClient } from '../model/validator-client.ts';
import { loadOperatorConfig } from '../operator/config.ts';
import { createFakeClient } from '../operator/fake-client.ts';
import { silentLogger } from '../operator/log.ts';
import { createManager } from '../operator/manager.ts';
import { createMetrics } from '../operator/metrics.ts';
import { registerAuroraControllers } from './operator.ts';

describe('the operator', () => {
  it('registers every controller on one manager, sharing the informers they both read, and starts', async () => {
    const client = createFakeClient();
    const manager = createManager({
      client,
      log: silentLogger,
      metrics: createMetrics({ defaultMetrics: false }),
    });
    const config = loadOperatorConfig(['--leader-elect=false'], {});
    // Controllers that index the same kind (CareQueues by target) must define the index once between them.
    expect(() =>
      registerAuroraControllers(
        manager,
        config,
        createValidatorClient(() => 'http://127.0.0.1:9'),
      ),
    ).not.toThrow();
    await manager.start();
    await client.create({
      apiVersion,
      kind: 'CareQueue',
      metadata: { name: 'er-queue', namespace: 'emergency' },
      spec: {
        redis: { urlSecretRef: { name: 'er-redis', key: 'url' } },
        scaleTargetRef: { kind: 'InferencePool', name: 'er-triage' },
      },
    });
    await manager.stop();
  });
});

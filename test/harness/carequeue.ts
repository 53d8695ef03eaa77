// What the CareQueue integration tests share: a namespace with the queue's Redis Secret, a PostgreSQL
// schema of their own, a manager running the CareQueue controller, and a recognisable patient whose
// values must never leave Redis.
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { registerCareQueueController } from '../../controllers/carequeue/reconcile.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { Manager, ManagerOptions } from '../../operator/manager.ts';
import { createStateStore, type StateStore } from '../../state/postgres.ts';
import {
  createTestManager,
  createTestNamespace,
  operatorClient,
  testAccess,
  uniqueSuffix,
} from './cluster.ts';

/**
 * A synthetic patient with values no test writes anywhere else: eight-digit fractions, exact in binary
 * so they print as written, and long enough that no rate or timestamp contains one by chance (a short
 * one such as 31.375 can turn up inside 231.3752, a rate per minute). A search of logs, Events,
 * status, metrics and rows for them finds only a leak.
 */
export function recognisablePatient(offset = 0) {
  const patient = {
    respiration_rate: 27.37890625 + offset,
    spo2: 88.81640625 - offset / 2,
    supplemental_oxygen: 1,
    systolic_bp: 87.68359375 - offset,
    pulse: 133.43359375 + offset,
    consciousness: 1,
    temperature: 39.31640625 + offset / 8,
  };
  /** The values recognisable in text (0 and 1 are in everything). */
  const recognisable = Object.values(patient)
    .filter((v) => !Number.isInteger(v))
    .map(String);
  return { patient, recognisable };
}

export interface CareQueueTestbed {
  namespace: string;
  redis: Redis;
  store: StateStore;
  schema: string;
  manager: Manager;
  /** Stops the manager, removes the namespace's streams, the schema and the namespace. */
  cleanup(): Promise<void>;
}

/** Starts the testbed; the Secret `er-redis` holds the test Redis's URL under `url`. */
export async function startCareQueueTestbed(
  prefix: string,
  managerOptions: Partial<ManagerOptions> = {},
): Promise<CareQueueTestbed> {
  const client = createKubeClient(testAccess());
  const { name: namespace, cleanup: dropNamespace } = await createTestNamespace(prefix);
  const schema = `test_${prefix.replace(/[^a-z0-9]/g, '_')}_${uniqueSuffix()}`;
  const redis = new Redis(inject('redisUrl'));
  const store = createStateStore({ url: inject('postgresUrl'), schema });
  await store.migrate();
  await client.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'er-redis', namespace },
    // A trailing newline, as `kubectl create secret --from-file` leaves one.
    stringData: { url: `${inject('redisUrl')}\n` },
  });
  const manager = createTestManager(operatorClient(), namespace, managerOptions);
  registerCareQueueController(manager, { store });
  await manager.start();
  return {
    namespace,
    redis,
    store,
    schema,
    manager,
    async cleanup() {
      await manager.stop();
      const keys = await redis.keys(`aurora:${namespace}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      await store.pool.query(`drop schema ${schema} cascade`);
      await store.close();
      await dropNamespace();
    },
  };
}

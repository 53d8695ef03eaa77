import { apiVersion, type CareQueue } from '../crds/kinds.ts';
import type { Manager } from '../operator/manager.ts';

/** The index of CareQueues by the target they scale: `<namespace>/<kind>/<name>`. */
export const careQueueTargetIndex = 'target';

export const careQueueTargetKey = (namespace: string, kind: string, name: string) =>
  `${namespace}/${kind}/${name}`;

const byTarget = (q: CareQueue) => [
  careQueueTargetKey(
    q.metadata.namespace ?? '',
    q.spec?.scaleTargetRef?.kind ?? '',
    q.spec?.scaleTargetRef?.name ?? '',
  ),
];

/**
 * The CareQueue informer with its target index, shared by the controllers that read it (the CareQueue
 * controller scales targets; the InferencePool controller makes a targeted pool's servers consumers).
 * One definition, so both may ask for it on the same manager.
 */
export function careQueueInformer(manager: Manager) {
  return manager.informer<CareQueue>(apiVersion, 'CareQueue', {
    indexers: { [careQueueTargetIndex]: byTarget },
  });
}

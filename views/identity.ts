import type { KubeObject } from '../operator/kube/types.ts';

/**
 * What every slim cached view keeps of an object's identity: kind, name, namespace, uid and
 * resourceVersion (the informer needs the last to resume its watch); labels, annotations and owners are
 * each view's own choice.
 */
export function identityOf(obj: KubeObject): KubeObject {
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: {
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
      ...(obj.metadata.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {}),
    },
  };
}

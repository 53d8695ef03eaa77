import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatedDir } from '../../crds/generate.ts';
import { isConflict, type KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { parseYamlObjects } from './control-plane.ts';
import { waitFor } from './process.ts';

/** Creates (or replaces) Aurora's generated CRDs and waits until the API server serves every kind. */
export async function installAuroraCrds(client: KubeClient): Promise<void> {
  const crds = readdirSync(generatedDir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseYamlObjects(readFileSync(join(generatedDir, f), 'utf8')));
  for (const crd of crds) {
    try {
      await client.create(crd);
    } catch (err) {
      if (!isConflict(err))
        throw new Error(`CRD ${crd.metadata.name} was refused: ${(err as Error).message}`);
      const current = (await client.get(crd)) as KubeObject;
      await client.update({
        ...crd,
        metadata: { ...crd.metadata, resourceVersion: current.metadata.resourceVersion },
      });
    }
  }
  for (const crd of crds) {
    const spec = crd.spec as { group: string; versions: Array<{ name: string }>; names: { kind: string } };
    await waitFor(`${spec.names.kind} to be served`, async () => {
      await client.list(`${spec.group}/${spec.versions[0]?.name}`, spec.names.kind, { limit: 1 });
      return true;
    });
  }
}

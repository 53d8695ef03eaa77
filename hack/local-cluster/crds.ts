import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatedDir } from '../../crds/generate.ts';
import type { KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { parseYamlObjects } from './control-plane.ts';
import { waitFor } from './process.ts';

/** Applies CRDs server-side (creating or updating them) and waits until the API server serves each kind. */
export async function installCrds(
  client: KubeClient,
  crds: readonly KubeObject[],
  fieldManager = 'aurora-crd-install',
): Promise<void> {
  for (const crd of crds) {
    try {
      await client.apply(crd, { fieldManager, force: true });
    } catch (err) {
      throw new Error(`CRD ${crd.metadata.name} was refused: ${(err as Error).message}`);
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

/** Installs Aurora's generated CRDs and waits until the API server serves every kind. */
export async function installAuroraCrds(client: KubeClient): Promise<void> {
  const crds = readdirSync(generatedDir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseYamlObjects(readFileSync(join(generatedDir, f), 'utf8')));
  await installCrds(client, crds);
}

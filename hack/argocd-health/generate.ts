// Writes examples/argocd/argocd-cm-health.yaml: the Argo CD health checks of Aurora's kinds as the keys
// of Argo CD's argocd-cm, from the scripts in charts/aurora/files/argocd (which the chart renders too).
// `node hack/argocd-health/generate.ts` writes it; `--check` fails when the checked-in file is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

const root = resolve(import.meta.dirname, '../..');

/** Where each kind's health.lua, health_test.yaml and testdata live, in Argo CD's layout. */
export const healthChecksDir = join(root, 'charts/aurora/files/argocd/aurora.health');
export const argocdCmFile = join(root, 'examples/argocd/argocd-cm-health.yaml');
export const healthKinds = ['TriageModel', 'InferencePool', 'CareQueue', 'HealingPolicy'] as const;
export type HealthKind = (typeof healthKinds)[number];

export const healthScript = (kind: HealthKind) => join(healthChecksDir, kind, 'health.lua');
/** The argocd-cm key Argo CD reads a kind's health check from. */
export const argocdCmKey = (kind: HealthKind) => `resource.customizations.health.aurora.health_${kind}`;

const header = `# Argo CD health checks for Aurora's kinds, as keys of Argo CD's argocd-cm. Generated from
# charts/aurora/files/argocd/aurora.health/<Kind>/health.lua by \`npm run generate:argocd-health\`: edit those.
# Merge into a running Argo CD (the other keys of argocd-cm stay as they are):
#   kubectl apply --server-side --field-manager=aurora-health -f examples/argocd/argocd-cm-health.yaml
# or: kubectl -n argocd patch configmap argocd-cm --type merge --patch-file examples/argocd/argocd-cm-health.yaml
`;

/** The ConfigMap with the four keys, as YAML. */
export function renderArgocdCm(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): string {
  const data = Object.fromEntries(healthKinds.map((kind) => [argocdCmKey(kind), read(healthScript(kind))]));
  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: 'argocd-cm',
      namespace: 'argocd',
      labels: { 'app.kubernetes.io/name': 'argocd-cm', 'app.kubernetes.io/part-of': 'argocd' },
    },
    data,
  };
  return header + stringify(configMap, { blockQuote: 'literal', lineWidth: 0 });
}

if (import.meta.main) {
  const rendered = renderArgocdCm();
  if (process.argv.includes('--check')) {
    if (readFileSync(argocdCmFile, 'utf8') !== rendered) {
      console.error(`${argocdCmFile} is stale: run npm run generate:argocd-health`);
      process.exit(1);
    }
  } else {
    writeFileSync(argocdCmFile, rendered);
    console.log(`wrote ${argocdCmFile}`);
  }
}

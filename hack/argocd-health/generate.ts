// Writes the Argo CD health checks of Aurora's kinds: each kind's health.lua (Argo CD's layout, which the
// chart renders), made of charts/aurora/files/argocd/common.lua and the kind's checks.lua, since Argo CD
// runs each script alone and they cannot share a module; and examples/argocd/argocd-cm-health.yaml, the
// same scripts as the keys of Argo CD's argocd-cm. `node hack/argocd-health/generate.ts` writes them;
// `--check` fails when a checked-in file is stale.
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
export const checksScript = (kind: HealthKind) => join(healthChecksDir, kind, 'checks.lua');
export const commonScript = join(root, 'charts/aurora/files/argocd/common.lua');

type Read = (path: string) => string;
const readText: Read = (p) => readFileSync(p, 'utf8');
/** A script's leading comment lines, and the rest. */
const splitComment = (text: string) => {
  const lines = text.split('\n');
  const n = lines.findIndex((l) => !l.startsWith('--'));
  return { comment: lines.slice(0, n).join('\n'), rest: lines.slice(n).join('\n').replace(/^\n+/, '') };
};

/** A kind's health.lua: its checks' leading comment, the beginning common to every kind, then its checks. */
export function renderHealthScript(kind: HealthKind, read: Read = readText): string {
  const checks = splitComment(read(checksScript(kind)));
  const common = splitComment(read(commonScript)).rest;
  return `${checks.comment}
-- Generated from charts/aurora/files/argocd/common.lua and this kind's checks.lua by
-- \`npm run generate:argocd-health\`: edit those.
${common}
${checks.rest}`;
}
/** The argocd-cm key Argo CD reads a kind's health check from. */
export const argocdCmKey = (kind: HealthKind) => `resource.customizations.health.aurora.health_${kind}`;

const header = `# Argo CD health checks for Aurora's kinds, as keys of Argo CD's argocd-cm. Generated from
# charts/aurora/files/argocd (common.lua and aurora.health/<Kind>/checks.lua) by
# \`npm run generate:argocd-health\`: edit those.
# Merge into a running Argo CD (the other keys of argocd-cm stay as they are):
#   kubectl apply --server-side --field-manager=aurora-health -f examples/argocd/argocd-cm-health.yaml
# or: kubectl -n argocd patch configmap argocd-cm --type merge --patch-file examples/argocd/argocd-cm-health.yaml
`;

/** The ConfigMap with the four keys, as YAML. */
export function renderArgocdCm(read: Read = readText): string {
  const data = Object.fromEntries(
    healthKinds.map((kind) => [argocdCmKey(kind), renderHealthScript(kind, read)]),
  );
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
  const outputs: Array<[string, string]> = [
    ...healthKinds.map((kind): [string, string] => [healthScript(kind), renderHealthScript(kind)]),
    [argocdCmFile, renderArgocdCm()],
  ];
  const check = process.argv.includes('--check');
  for (const [file, rendered] of outputs) {
    if (!check) {
      writeFileSync(file, rendered);
      console.log(`wrote ${file}`);
    } else if (readText(file) !== rendered) {
      console.error(`${file} is stale: run npm run generate:argocd-health`);
      process.exitCode = 1;
    }
  }
}

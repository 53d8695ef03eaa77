import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { auroraAccess } from '../cmd/operator.ts';
import { kinds } from '../crds/kinds.ts';
import { defaultWorkloadImage } from '../operator/config.ts';
import { type AccessRule, policyRules } from '../operator/rbac.ts';
import {
  chartDir,
  crdTemplatePath,
  rbacTemplatePath,
  renderCrdTemplate,
  renderRbacTemplate,
} from './generate.ts';

describe('the chart’s generated templates', () => {
  it.each(kinds.map((k) => k.kind))(
    '%s: the CRD template matches crds/ (run npm run generate:chart)',
    (kind) => {
      const def = kinds.find((k) => k.kind === kind);
      if (!def) throw new Error(kind);
      expect(readFileSync(crdTemplatePath(def), 'utf8')).toBe(renderCrdTemplate(def));
    },
  );

  it('the RBAC template matches what the controllers declare (run npm run generate:chart)', () => {
    expect(readFileSync(rbacTemplatePath, 'utf8')).toBe(renderRbacTemplate());
  });

  it("the chart's appVersion is the package's version, so the default image is the operator's own release", () => {
    const chart = parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as { appVersion: string };
    const pkg = JSON.parse(readFileSync(join(chartDir, '..', '..', 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(chart.appVersion).toBe(pkg.version);
    expect(defaultWorkloadImage).toBe(`ghcr.io/aurora-health/aurora:${chart.appVersion}`);
  });
});

const rule = (over: Partial<AccessRule>): AccessRule => ({
  apiGroup: '',
  resources: ['pods'],
  verbs: ['get'],
  why: 'test',
  ...over,
});

describe('policyRules', () => {
  it.each<[string, AccessRule[], ReturnType<typeof policyRules>]>([
    ['one rule as it is', [rule({})], [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }]],
    [
      'verbs of one resource merged and ordered',
      [rule({ verbs: ['watch', 'get'] }), rule({ verbs: ['list', 'get'] })],
      [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }],
    ],
    [
      'resources of a group with the same verbs in one rule',
      [rule({ resources: ['services'] }), rule({ resources: ['configmaps'] })],
      [{ apiGroups: [''], resources: ['configmaps', 'services'], verbs: ['get'] }],
    ],
    [
      'groups kept apart',
      [rule({ apiGroup: 'apps', resources: ['deployments'] }), rule({})],
      [
        { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
        { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] },
      ],
    ],
    [
      'rules of the other scope left out',
      [rule({ scope: 'operatorNamespace', resources: ['leases'] }), rule({})],
      [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }],
    ],
  ])('%s', (_, access, expected) => {
    expect(policyRules(access, 'cluster')).toEqual(expected);
  });

  it('refuses a wildcard and an empty rule, naming the rule', () => {
    expect(() => policyRules([rule({ resources: ['*'] })], 'cluster')).toThrow(/wildcards/);
    expect(() => policyRules([rule({ apiGroup: '*' })], 'cluster')).toThrow(/wildcards/);
    expect(() => policyRules([rule({ verbs: [] })], 'cluster')).toThrow(/no verb/);
  });

  it("Aurora's declarations never list or watch Secrets and never use a wildcard", () => {
    for (const scope of ['cluster', 'operatorNamespace'] as const) {
      for (const r of policyRules(auroraAccess, scope)) {
        if (r.resources.includes('secrets')) expect(r.verbs).toEqual(['get']);
        expect([...r.apiGroups, ...r.resources, ...r.verbs].filter((x) => x.includes('*'))).toEqual([]);
      }
    }
  });
});

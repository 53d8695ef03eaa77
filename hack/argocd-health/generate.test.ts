import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  argocdCmFile,
  argocdCmKey,
  checksScript,
  commonScript,
  healthKinds,
  healthScript,
  renderArgocdCm,
  renderHealthScript,
} from './generate.ts';

describe('each kind’s health.lua', () => {
  it.each(healthKinds)(
    '%s: is common.lua and its checks.lua (run npm run generate:argocd-health)',
    (kind) => {
      expect(readFileSync(healthScript(kind), 'utf8')).toBe(renderHealthScript(kind));
    },
  );

  it('begins with the kind’s own comment, then the common part, then the kind’s checks', () => {
    const read = (path: string) =>
      path === commonScript
        ? '-- about the common part\nlocal hs = {}\n'
        : path === checksScript('CareQueue')
          ? '-- CareQueue health\n\nreturn hs\n'
          : readFileSync(path, 'utf8');
    expect(renderHealthScript('CareQueue', read)).toBe(
      "-- CareQueue health\n-- Generated from charts/aurora/files/argocd/common.lua and this kind's checks.lua by\n-- `npm run generate:argocd-health`: edit those.\nlocal hs = {}\n\nreturn hs\n",
    );
  });
});

describe('examples/argocd/argocd-cm-health.yaml', () => {
  it('matches the health checks in charts/aurora/files/argocd (run npm run generate:argocd-health)', () => {
    expect(readFileSync(argocdCmFile, 'utf8')).toBe(renderArgocdCm());
  });

  it('is argocd-cm with only the four health keys, each the kind’s script as it is', () => {
    const cm = parse(readFileSync(argocdCmFile, 'utf8'));
    expect(cm.metadata).toMatchObject({
      name: 'argocd-cm',
      namespace: 'argocd',
      labels: { 'app.kubernetes.io/part-of': 'argocd' },
    });
    expect(Object.keys(cm.data).sort()).toEqual(
      [
        'resource.customizations.health.aurora.health_CareQueue',
        'resource.customizations.health.aurora.health_HealingPolicy',
        'resource.customizations.health.aurora.health_InferencePool',
        'resource.customizations.health.aurora.health_TriageModel',
      ].sort(),
    );
    for (const kind of healthKinds)
      expect(cm.data[argocdCmKey(kind)]).toBe(readFileSync(healthScript(kind), 'utf8'));
  });

  it('goes stale when a script changes', () => {
    const changed = renderArgocdCm((path) =>
      path === checksScript('CareQueue') ? 'return { status = "Healthy" }\n' : readFileSync(path, 'utf8'),
    );
    expect(changed).not.toBe(readFileSync(argocdCmFile, 'utf8'));
    expect(parse(changed).data[argocdCmKey('CareQueue')]).toMatch(/\nreturn \{ status = "Healthy" \}\n$/);
  });
});

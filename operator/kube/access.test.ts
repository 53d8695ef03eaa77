import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { accessFromKubeconfig, clusterAccess, withServer } from './access.ts';

const dir = mkdtempSync(join(tmpdir(), 'aurora-access-'));
function kubeconfig(user: Record<string, unknown>, cluster: Record<string, unknown> = {}): string {
  const path = join(dir, `config-${Math.random().toString(36).slice(2)}`);
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'ward',
      contexts: [
        { name: 'other', context: { cluster: 'elsewhere', user: 'nobody' } },
        { name: 'ward', context: { cluster: 'er', user: 'operator' } },
      ],
      clusters: [
        { name: 'elsewhere', cluster: { server: 'https://wrong.example' } },
        { name: 'er', cluster: { server: 'https://10.0.0.1:6443/', ...cluster } },
      ],
      users: [{ name: 'operator', user }],
    }),
  );
  return path;
}

describe('cluster access from a kubeconfig', () => {
  it('takes the current context: its server and its bearer token', async () => {
    const access = accessFromKubeconfig(kubeconfig({ token: 'abc' }, { 'certificate-authority-data': '' }));
    expect(access.server).toBe('https://10.0.0.1:6443');
    expect(await access.authHeaders()).toEqual({ authorization: 'Bearer abc' });
  });

  it('reads a token file relative to the kubeconfig, as projected tokens are', async () => {
    writeFileSync(join(dir, 'token'), 'rotating\n');
    const access = accessFromKubeconfig(kubeconfig({ tokenFile: 'token' }));
    expect(await access.authHeaders()).toEqual({ authorization: 'Bearer rotating' });
  });

  it('runs an exec credential plugin for its token', async () => {
    const plugin = join(dir, 'plugin.sh');
    writeFileSync(
      plugin,
      '#!/bin/sh\necho \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-\'$WARD\'"}}\'\n',
    );
    chmodSync(plugin, 0o755);
    const access = accessFromKubeconfig(
      kubeconfig({ exec: { command: plugin, env: [{ name: 'WARD', value: 'er' }] } }),
    );
    expect(await access.authHeaders()).toEqual({ authorization: 'Bearer from-er' });
  });

  it('uses basic credentials when that is what the user has', async () => {
    const access = accessFromKubeconfig(kubeconfig({ username: 'admin', password: 'pw' }));
    expect(await access.authHeaders()).toEqual({
      authorization: `Basic ${Buffer.from('admin:pw').toString('base64')}`,
    });
  });

  it('refuses a kubeconfig with no current context, naming the file', () => {
    const path = join(dir, 'empty');
    writeFileSync(path, stringify({ apiVersion: 'v1', kind: 'Config' }));
    expect(() => accessFromKubeconfig(path)).toThrow(`${path} has no current context`);
  });

  it('keeps the credentials when the address changes (a proxy in front)', async () => {
    const access = withServer(
      clusterAccess({ server: 'https://10.0.0.1:6443', token: 't' }),
      'https://127.0.0.1:9/',
    );
    expect(access.server).toBe('https://127.0.0.1:9');
    expect(await access.authHeaders()).toEqual({ authorization: 'Bearer t' });
  });
});

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The control-plane versions pinned in hack/control-plane/versions.env, the one place they are set. */
export function pinnedVersions(): { kube: string; etcd: string; kwok: string } {
  const file = join(resolve(import.meta.dirname, '../..'), 'hack', 'control-plane', 'versions.env');
  const values = Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => line.split('=', 2) as [string, string]),
  );
  const pick = (name: string) => {
    const value = values[name];
    if (!value) throw new Error(`${file} does not set ${name}`);
    return value.trim();
  };
  return { kube: pick('KUBE_VERSION'), etcd: pick('ETCD_VERSION'), kwok: pick('KWOK_VERSION') };
}

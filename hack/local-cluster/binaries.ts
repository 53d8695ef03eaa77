import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './control-plane.ts';

/**
 * Runs hack/build-control-plane.sh, which returns at once when every binary is built at its pinned
 * version and otherwise builds what is missing, printing progress.
 */
export async function ensureControlPlaneBinaries(): Promise<void> {
  const script = join(repoRoot, 'hack', 'build-control-plane.sh');
  const code = await new Promise<number | null>((ok, fail) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', fail);
    child.once('exit', ok);
  });
  if (code !== 0) throw new Error(`${script} failed with exit code ${code}`);
}

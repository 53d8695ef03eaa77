// The Argo CD health-check runner (hack/argocd-health, built by hack/build-control-plane.sh) runs a Lua
// script as Argo CD does: gopher-lua with only base, table and os.time/os.date, the resource as obj,
// one second at most. The health checks of Aurora's kinds are tested with it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runHealthScript } from '../harness/argocd-health.ts';

const dir = mkdtempSync(join(tmpdir(), 'aurora-lua-'));
/** Runs a script over a resource: what it returned, or the error it ended with. */
function health(
  script: string,
  obj: unknown,
): Promise<{ ok: true; value: Record<string, unknown> } | { ok: false; error: string }> {
  const path = join(dir, `${Math.random().toString(36).slice(2)}.lua`);
  writeFileSync(path, script);
  return runHealthScript<Record<string, unknown>>(path, obj).then(
    (value) => ({ ok: true, value }),
    (err: Error) => ({ ok: false, error: err.message }),
  );
}

describe('the Argo CD health-check runner', () => {
  it('gives the script the resource as obj and returns its table', async () => {
    const script = `
      local hs = { status = "Progressing", message = "waiting" }
      for _, c in ipairs(obj.status.conditions) do
        if c.type == "Ready" and c.status == "True" then hs.status = "Healthy"; hs.message = c.message end
      end
      return hs`;
    const obj = { status: { conditions: [{ type: 'Ready', status: 'True', message: 'serving 1.0.0' }] } };
    expect(await health(script, obj)).toEqual({
      ok: true,
      value: { status: 'Healthy', message: 'serving 1.0.0' },
    });
  });

  it('opens only base, table and the clock of os, as Argo CD does', async () => {
    const script = `return {
      io = io == nil, string = string == nil, math = math == nil, debug = debug == nil,
      execute = os.execute == nil, getenv = os.getenv == nil, remove = os.remove == nil,
      time = os.time() > 0, date = type(os.date("%Y")) == "string", insert = type(table.insert) == "function" }`;
    expect(await health(script, {})).toEqual({
      ok: true,
      value: {
        io: true,
        string: true,
        math: true,
        debug: true,
        execute: true,
        getenv: true,
        remove: true,
        time: true,
        date: true,
        insert: true,
      },
    });
  });

  it('stops a script after a second', async () => {
    const started = Date.now();
    const result = await health('while true do end', {});
    expect(result).toMatchObject({ ok: false, error: expect.stringContaining('deadline') });
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

// Failpoints, as etcd's gofail has them: named places where a fault-injection test may make the process
// pause, so that it can be killed at a chosen moment (between an audit intent and its action, say). They
// are off unless AURORA_FAILPOINTS names them, which no deployment sets:
//   AURORA_FAILPOINTS="healing-after-intent=sleep(30000);healing-before-outcome=sleep(30000)"
import { setTimeout as sleep } from 'node:timers/promises';

function parse(text: string | undefined): Map<string, number> {
  const points = new Map<string, number>();
  for (const part of (text ?? '').split(';')) {
    const m = part.trim().match(/^([a-z][a-z0-9-]*)=sleep\((\d{1,7})\)$/);
    if (m?.[1] && m[2]) points.set(m[1], Number(m[2]));
  }
  return points;
}

const points = parse(process.env.AURORA_FAILPOINTS);

/** Pauses here when the failpoint is enabled; returns at once otherwise. */
export async function failpoint(name: string): Promise<void> {
  const ms = points.get(name);
  if (ms) await sleep(ms);
}

export const parseFailpoints = parse;

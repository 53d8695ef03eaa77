/**
 * One copy of each short string the caches hold. JSON.parse gives every object its own copy of every
 * value ("Running", "True", an image name, a namespace), and a cache of thousands of pods holds
 * thousands of copies; sharing them saves about a third of a pod's memory. Long strings are rarely
 * repeated and left alone; the table stops growing at maxEntries, after which it still shares what it has.
 */
const maxLength = 64;
const maxEntries = 200_000;
const table = new Map<string, string>();
/** Fields whose values are one object's own (identities, versions, times, addresses): never shared. */
const ownValues = new Set([
  'uid',
  'resourceVersion',
  'creationTimestamp',
  'deletionTimestamp',
  'lastTransitionTime',
  'lastProbeTime',
  'lastHeartbeatTime',
  'lastUpdateTime',
  'startTime',
  'startedAt',
  'finishedAt',
  'podIP',
  'ip',
  'containerID',
  'name',
]);

function intern(value: string): string {
  if (value.length > maxLength) return value;
  const shared = table.get(value);
  if (shared !== undefined) return shared;
  if (table.size < maxEntries) table.set(value, value);
  return value;
}

/** Replaces, in place, every short string value in obj with its shared copy; returns obj. */
export function internStrings<T>(obj: T): T {
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const v = node[i];
        if (typeof v === 'string') node[i] = intern(v);
        else if (v !== null && typeof v === 'object') visit(v);
      }
      return;
    }
    const record = node as Record<string, unknown>;
    for (const key in record) {
      const v = record[key];
      if (typeof v === 'string') {
        if (!ownValues.has(key)) record[key] = intern(v);
      } else if (v !== null && typeof v === 'object') visit(v);
    }
  };
  if (obj !== null && typeof obj === 'object') visit(obj);
  return obj;
}

/** How many strings are shared now (for tests and metrics). */
export const internedStrings = () => table.size;

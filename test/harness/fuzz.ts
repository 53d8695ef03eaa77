// Manifests made wrong on purpose: every field of a valid manifest's spec, mutated in the ways a person
// or a tool gets YAML wrong (a wrong type, a value out of bounds, a field missing or misspelt, a list
// empty or repeated, a minimum above its maximum). Pure and seeded, so a failing case can be replayed.
import { seededRandom } from '../../hack/example-model/patients.ts';
import type { KubeObject } from '../../operator/kube/types.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = Array<string | number>;

export interface Mutation {
  /** What was done, and where: `wrong-type spec.minReplicas`. */
  description: string;
  operator: string;
  path: string;
  manifest: KubeObject;
}

const isObject = (v: Json): v is { [key: string]: Json } =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every path below spec: each field, each list, and the first item of each list. */
function paths(value: Json, at: Path): Path[] {
  const found: Path[] = [at];
  if (Array.isArray(value)) {
    if (value.length > 0) found.push(...paths(value[0] as Json, [...at, 0]));
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) found.push(...paths(v, [...at, k]));
  }
  return found;
}

const get = (root: Json, path: Path): Json =>
  path.reduce<Json>((v, k) => (v as { [k: string]: Json } & Json[])[k as never] as Json, root);

function set(root: Json, path: Path, value: Json | undefined): void {
  const parent = get(root, path.slice(0, -1)) as { [key: string]: Json } & Json[];
  const key = path.at(-1) as never;
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
  } else parent[key] = value as never;
}

const show = (path: Path) =>
  path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');

/** The mutations that apply to one value, each a function of the manifest (changed in place). */
function operatorsFor(value: Json, path: Path): Array<[string, (m: Json) => void]> {
  const ops: Array<[string, (m: Json) => void]> = [];
  const to = (v: Json | undefined) => (m: Json) => set(m, path, v);
  if (path.length > 1) ops.push(['missing', to(undefined)]);
  if (typeof value === 'number') {
    ops.push(['wrong-type', to(String(value))], ['negative', to(-1)], ['huge', to(1e12)]);
    if (Number.isInteger(value)) ops.push(['fraction', to(value + 0.5)]);
  } else if (typeof value === 'string') {
    ops.push(['wrong-type', to(7)], ['empty', to('')], ['too-long', to('x'.repeat(300))]);
    ops.push(['bad-characters', to('Not A Name!')]);
  } else if (typeof value === 'boolean') {
    ops.push(['wrong-type', to('yes')]);
  } else if (Array.isArray(value)) {
    ops.push(['wrong-type', to({ first: value[0] ?? null })], ['empty-list', to([])]);
    if (value.length > 0) ops.push(['repeated', to([...value, structuredClone(value[0] as Json)])]);
  } else if (isObject(value)) {
    ops.push(
      ['wrong-type', to('an object was expected')],
      [
        'unknown-field',
        (m) => {
          (get(m, path) as { [key: string]: Json }).unexpectedField = 1;
        },
      ],
    );
    // A minimum above its maximum: minReplicas/maxReplicas, min/max, and the like.
    for (const key of Object.keys(value)) {
      const pair = key.startsWith('min') ? `max${key.slice(3)}` : undefined;
      const low = value[key];
      const high = pair ? value[pair] : undefined;
      if (pair && typeof low === 'number' && typeof high === 'number')
        ops.push([`min-above-max(${key})`, (m) => set(m, [...path, key], high + 1)]);
    }
  }
  return ops;
}

/**
 * Up to `perKind` mutations of a valid manifest, drawn without repeats from every (path, operator) pair
 * with a seeded order, each a whole manifest named `<prefix>-<n>`.
 */
export function mutate(
  base: KubeObject,
  options: { seed: number; perKind: number; prefix: string },
): Mutation[] {
  const spec = (base as KubeObject & { spec: Json }).spec;
  const candidates = paths(spec, ['spec']).flatMap((path) =>
    operatorsFor(get({ spec } as Json, path), path).map(([operator, apply]) => ({ path, operator, apply })),
  );
  const random = seededRandom(options.seed);
  // Fisher–Yates with the seeded generator, then the first perKind.
  for (let i = candidates.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [candidates[i], candidates[j]] = [
      candidates[j] as (typeof candidates)[number],
      candidates[i] as (typeof candidates)[number],
    ];
  }
  return candidates.slice(0, options.perKind).map((c, n) => {
    const root = { spec: structuredClone(spec) } as Json;
    c.apply(root);
    const name = `${options.prefix}-${n}`;
    return {
      description: `${c.operator} ${show(c.path)}`,
      operator: c.operator,
      path: show(c.path),
      manifest: {
        ...base,
        metadata: { name },
        spec: (root as { spec: Json }).spec,
      } as KubeObject,
    };
  });
}

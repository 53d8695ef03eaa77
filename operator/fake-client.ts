import { isDeepStrictEqual } from 'node:util';
import { ApiError, type KubeClient, type ResourceInfo, type WatchEvent } from './kube/client.ts';
import { type KubeObject, type ObjectRef, objectKey } from './kube/types.ts';

/**
 * An in-memory stand-in for the API server, for unit tests of controllers and the runtime (what
 * controller-runtime's fake client is to Go operators). It keeps objects per kind with resourceVersion,
 * generation (moved by spec changes) and deletion held by finalizers, and streams watches; it does not
 * validate, default or run admission. Tests that prove a feature use the real control plane instead.
 */
export interface FakeClient extends KubeClient {
  /** Every object of a kind, as stored. */
  objects(apiVersion: string, kind: string): KubeObject[];
  /** Requests the client served, as `VERB kind[/subresource]`, for asserting what was written. */
  readonly requests: string[];
}

type Stored = {
  info: ResourceInfo;
  objects: Map<string, KubeObject>;
  log: Array<{ rv: number; event: WatchEvent }>;
};

const clone = <T>(value: T): T => structuredClone(value);

export function createFakeClient(
  options: {
    /** Admission: a message refuses a create or apply of the object with 422, as a policy would. */
    admit?: (obj: KubeObject) => string | undefined;
  } = {},
): FakeClient {
  const kinds = new Map<string, Stored>();
  const listeners = new Set<() => void>();
  const requests: string[] = [];
  let revision = 1;
  let uid = 0;

  const kindOf = (apiVersion: string, kind: string): Stored => {
    const id = `${apiVersion}|${kind}`;
    let stored = kinds.get(id);
    if (!stored) {
      const namespaced = !['Node', 'Namespace'].includes(kind);
      stored = {
        info: { apiVersion, kind, plural: `${kind.toLowerCase()}s`, namespaced },
        objects: new Map(),
        log: [],
      };
      kinds.set(id, stored);
    }
    return stored;
  };

  const record = (stored: Stored, type: WatchEvent['type'], obj: KubeObject) => {
    stored.log.push({ rv: Number(obj.metadata.resourceVersion), event: { type, object: clone(obj) } });
    for (const wake of listeners) wake();
  };

  const save = (stored: Stored, obj: KubeObject, type: 'ADDED' | 'MODIFIED') => {
    obj.metadata.resourceVersion = String(++revision);
    stored.objects.set(objectKey(obj), obj);
    record(stored, type, obj);
    return clone(obj);
  };

  const existing = (ref: ObjectRef) => {
    const stored = kindOf(ref.apiVersion, ref.kind);
    const obj = stored.objects.get(objectKey(ref));
    if (!obj) throw new ApiError(404, 'NotFound', `${ref.kind} ${objectKey(ref)} not found`);
    return { stored, obj };
  };

  /** Writes a changed object: the generation moves with the spec, deletion completes without finalizers. */
  const write = (stored: Stored, before: KubeObject, after: KubeObject, subresource?: string) => {
    if (subresource === 'status') after = { ...before, status: after.status };
    else if (!isDeepStrictEqual(before.spec, after.spec))
      after.metadata.generation = (before.metadata.generation ?? 1) + 1;
    if (after.metadata.deletionTimestamp && !after.metadata.finalizers?.length) {
      stored.objects.delete(objectKey(after));
      after.metadata.resourceVersion = String(++revision);
      record(stored, 'DELETED', after);
      return clone(after);
    }
    return save(stored, after, 'MODIFIED');
  };

  const precondition = (current: KubeObject, wanted: unknown) => {
    if (typeof wanted === 'string' && wanted !== current.metadata.resourceVersion)
      throw new ApiError(409, 'Conflict', `${current.kind} ${current.metadata.name} has been modified`);
  };

  const mergePatch = (target: unknown, patch: unknown): unknown => {
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return clone(patch);
    const out: Record<string, unknown> =
      typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...target } : {};
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete out[k];
      else out[k] = mergePatch(out[k], v);
    }
    return out;
  };

  const client: FakeClient = {
    access: { server: 'fake:', tls: {}, authHeaders: async () => ({}) },
    requests,
    objects: (apiVersion, kind) => [...kindOf(apiVersion, kind).objects.values()].map(clone),
    async request() {
      throw new Error('the fake client serves typed verbs only');
    },
    async resource(apiVersion, kind) {
      return kindOf(apiVersion, kind).info;
    },
    path(info, namespace) {
      return `${info.apiVersion}|${info.kind}|${namespace ?? ''}`;
    },
    async get<T extends KubeObject>(ref: ObjectRef) {
      const obj = kindOf(ref.apiVersion, ref.kind).objects.get(objectKey(ref));
      return obj ? (clone(obj) as T) : undefined;
    },
    async list<T extends KubeObject>(apiVersion: string, kind: string, options: { namespace?: string } = {}) {
      const items = [...kindOf(apiVersion, kind).objects.values()].filter(
        (o) => !options.namespace || o.metadata.namespace === options.namespace,
      );
      return { items: clone(items) as T[], resourceVersion: String(revision) };
    },
    async create<T extends KubeObject>(obj: T) {
      requests.push(`POST ${obj.kind}`);
      const stored = kindOf(obj.apiVersion, obj.kind);
      if (stored.objects.has(objectKey(obj)))
        throw new ApiError(409, 'AlreadyExists', `${obj.kind} ${objectKey(obj)} already exists`);
      const created = clone(obj);
      created.metadata.uid = `uid-${++uid}`;
      created.metadata.generation = 1;
      created.metadata.creationTimestamp = new Date(0).toISOString();
      return save(stored, created, 'ADDED') as T;
    },
    async update<T extends KubeObject>(obj: T, options: { subresource?: string } = {}) {
      requests.push(`PUT ${obj.kind}${options.subresource ? `/${options.subresource}` : ''}`);
      const { stored, obj: current } = existing(obj);
      precondition(current, obj.metadata.resourceVersion);
      return write(stored, current, clone(obj), options.subresource) as T;
    },
    async patch<T extends KubeObject>(ref: ObjectRef, patch: unknown, options: { subresource?: string }) {
      requests.push(`PATCH ${ref.kind}${options.subresource ? `/${options.subresource}` : ''}`);
      const { stored, obj: current } = existing(ref);
      precondition(
        current,
        (patch as { metadata?: { resourceVersion?: unknown } }).metadata?.resourceVersion,
      );
      const next = mergePatch(current, patch) as KubeObject;
      next.metadata.resourceVersion = current.metadata.resourceVersion;
      return write(stored, current, next, options.subresource) as T;
    },
    async apply<T extends KubeObject>(obj: T, applyOptions: { subresource?: string }) {
      requests.push(`APPLY ${obj.kind}${applyOptions.subresource ? `/${applyOptions.subresource}` : ''}`);
      const refused = applyOptions.subresource ? undefined : options.admit?.(obj);
      if (refused)
        throw new ApiError(
          422,
          'Invalid',
          `PATCH /fake: ${obj.kind} ${obj.metadata.name} is forbidden: ${refused}`,
        );
      const stored = kindOf(obj.apiVersion, obj.kind);
      const current = stored.objects.get(objectKey(obj));
      if (!current) {
        if (applyOptions.subresource)
          throw new ApiError(404, 'NotFound', `${obj.kind} ${objectKey(obj)} not found`);
        return (await client.create(obj)) as T;
      }
      // As the API server does, a resourceVersion in an applied object is a precondition.
      precondition(current, obj.metadata.resourceVersion);
      const next = { ...clone(current), ...clone(obj), metadata: { ...current.metadata } };
      return write(stored, current, next, applyOptions.subresource) as T;
    },
    async delete(ref) {
      requests.push(`DELETE ${ref.kind}`);
      const stored = kindOf(ref.apiVersion, ref.kind);
      const current = stored.objects.get(objectKey(ref));
      if (!current || current.metadata.deletionTimestamp) return;
      write(stored, current, {
        ...clone(current),
        metadata: { ...clone(current.metadata), deletionTimestamp: new Date(0).toISOString() },
      });
    },
    async watch(path, query, onEvent, signal) {
      const [apiVersion = '', kind = '', namespace = ''] = path.split('|');
      const stored = kindOf(apiVersion, kind);
      let seen = Number(query.resourceVersion ?? 0);
      const deliver = () => {
        for (const { rv, event } of stored.log) {
          if (rv <= seen) continue;
          seen = rv;
          if (!namespace || event.object.metadata.namespace === namespace) onEvent(clone(event));
        }
      };
      deliver();
      await new Promise<void>((resolve) => {
        const wake = () => deliver();
        listeners.add(wake);
        const end = () => {
          listeners.delete(wake);
          resolve();
        };
        if (signal.aborted) end();
        else signal.addEventListener('abort', end, { once: true });
      });
    },
  };
  return client;
}

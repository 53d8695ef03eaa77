import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { type HttpResponse, keepAliveAgent, send as sendHttp } from '../http.ts';
import type { ClusterAccess } from './access.ts';
import type { KubeObject, ObjectRef } from './types.ts';

/** A failed API call, with the HTTP status and the API server's reason (NotFound, Conflict, ...). */
export class ApiError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly details: unknown;
  constructor(status: number, reason: string, message: string, details?: unknown) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.reason = reason;
    this.details = details;
  }
}

export const isNotFound = (err: unknown) => err instanceof ApiError && err.status === 404;
export const isConflict = (err: unknown) => err instanceof ApiError && err.status === 409;
export const isGone = (err: unknown) => err instanceof ApiError && err.status === 410;

export interface ResourceInfo {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
export interface WatchEvent {
  type: WatchEventType;
  object: KubeObject;
}

export interface ListResult<T extends KubeObject = KubeObject> {
  items: T[];
  resourceVersion: string;
}

export type Query = Record<string, string | number | boolean | undefined>;

/** The request options shared by every verb. */
interface RequestOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
  /** The representation wanted (metadata only: PartialObjectMetadata). */
  accept?: string;
  signal?: AbortSignal;
  /**
   * Whether a 429 is waited out and retried (the default: throttling). An eviction's 429 is a refusal
   * (a PodDisruptionBudget allows no disruption) and is the caller's at once.
   */
  retryThrottled?: boolean;
}

/** Accept headers that ask the API server for metadata only: a cache that needs no data never downloads it. */
export const metadataOnly = {
  list: 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1',
  object: 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1',
} as const;

/** How fast one client may send: requests per second on average, and the burst allowed above that. */
export interface RateLimit {
  qps: number;
  burst: number;
}

/** Above controller-runtime's 20/30: a fleet of pools wakes on every pod, and priority and fairness guards the server. */
export const defaultRateLimit: RateLimit = { qps: 50, burst: 100 };

/** A token bucket: take() resolves when a request may go. Waiters are served in order. */
export function createRateLimiter(limit: RateLimit, now: () => number = () => performance.now()) {
  let tokens = limit.burst;
  let updatedAt = now();
  let queue = Promise.resolve();
  const refill = () => {
    const t = now();
    tokens = Math.min(limit.burst, tokens + ((t - updatedAt) / 1000) * limit.qps);
    updatedAt = t;
  };
  return {
    take(): Promise<void> {
      const turn = queue.then(async () => {
        refill();
        if (tokens < 1) {
          await new Promise((resolve) => setTimeout(resolve, ((1 - tokens) / limit.qps) * 1000));
          refill();
        }
        tokens -= 1;
      });
      queue = turn;
      return turn;
    },
  };
}

/** What a client reports of its requests, so metrics stay out of the client. */
export interface ClientObserver {
  /** A request answered (code: the HTTP status) or failed before an answer (code: '<error>'). */
  requested?(method: string, code: string): void;
  /** How long a request waited for the rate limiter before it was sent. */
  waited?(method: string, seconds: number): void;
}

/** How long a 429 asks to wait (Retry-After, seconds), within bounds; 1 s when it does not say. */
export function retryAfterMs(header: string | null): number {
  const seconds = Number(header);
  if (!Number.isFinite(seconds) || seconds <= 0) return 1000;
  return Math.min(seconds, 60) * 1000;
}

export interface ApplyOptions {
  fieldManager: string;
  /** Take fields another manager owns (controllers own their children outright). */
  force?: boolean;
}

/**
 * A thin client for the Kubernetes REST API on raw JSON. client-node's typed APIs convert every object
 * through its model classes and cannot reach the status subresource of custom kinds; this keeps objects
 * as the API server sent them, and authenticates as ClusterAccess says (operator/kube/access.ts).
 */
export interface KubeClient {
  /** Where the API server is and how to authenticate to it (for a second client with other limits). */
  readonly access: ClusterAccess;
  request<T>(method: string, path: string, options?: RequestOptions): Promise<T>;
  resource(apiVersion: string, kind: string): Promise<ResourceInfo>;
  path(info: ResourceInfo, namespace?: string, name?: string, subresource?: string): string;
  get<T extends KubeObject>(ref: ObjectRef): Promise<T | undefined>;
  list<T extends KubeObject>(
    apiVersion: string,
    kind: string,
    options?: {
      namespace?: string;
      labelSelector?: string;
      fieldSelector?: string;
      limit?: number;
      continue?: string;
      /** Metadata only (PartialObjectMetadataList): no data, spec or status is sent. */
      metadataOnly?: boolean;
    },
  ): Promise<ListResult<T> & { continue?: string }>;
  create<T extends KubeObject>(obj: T, options?: { fieldManager?: string }): Promise<T>;
  update<T extends KubeObject>(obj: T, options?: { fieldManager?: string; subresource?: string }): Promise<T>;
  patch<T extends KubeObject>(
    ref: ObjectRef,
    patch: unknown,
    options: { type: 'merge' | 'json' | 'strategic'; subresource?: string; fieldManager?: string },
  ): Promise<T>;
  /** Server-side apply of obj (a fully specified intent) under the given field manager. */
  apply<T extends KubeObject>(obj: T, options: ApplyOptions & { subresource?: string }): Promise<T>;
  delete(
    ref: ObjectRef,
    options?: { propagationPolicy?: 'Foreground' | 'Background' | 'Orphan' },
  ): Promise<void>;
  /**
   * Streams a watch. Resolves when the server ends the stream normally; rejects on a transport error or
   * an HTTP error. Each event is handed to onEvent in order.
   */
  watch(
    path: string,
    query: Query,
    onEvent: (event: WatchEvent) => void,
    signal: AbortSignal,
    options?: { metadataOnly?: boolean },
  ): Promise<void>;
}

const patchTypes = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
} as const;

/** The most times one request waits out a 429 before the error is the caller's. */
const maxThrottledRetries = 5;

export function createKubeClient(
  access: ClusterAccess,
  options: { requestTimeoutMs?: number; rateLimit?: RateLimit; observer?: ClientObserver } = {},
): KubeClient {
  const observer = options.observer ?? {};
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  // One budget for everything this client sends, so no controller can flood the API server.
  const limiter = createRateLimiter(options.rateLimit ?? defaultRateLimit);
  const agent = keepAliveAgent(access.server, access.tls);
  const discovery = new Map<string, Promise<Map<string, ResourceInfo>>>();

  const send = async (
    method: string,
    path: string,
    opts: RequestOptions,
    timeoutMs: number | undefined,
  ): Promise<HttpResponse> => {
    for (let attempt = 0; ; attempt++) {
      const queuedAt = performance.now();
      await limiter.take();
      observer.waited?.(method, (performance.now() - queuedAt) / 1000);
      opts.signal?.throwIfAborted();
      try {
        const response = await sendOnce(method, path, opts, timeoutMs);
        observer.requested?.(method, String(response.status));
        return response;
      } catch (err) {
        observer.requested?.(method, err instanceof ApiError ? String(err.status) : '<error>');
        // The API server asks us to slow down (priority and fairness): wait as long as it says, then retry.
        if (!(err instanceof ApiError && err.status === 429) || attempt >= maxThrottledRetries) throw err;
        if (opts.retryThrottled === false) throw err;
        const waitMs = (err.details as { retryAfterMs?: number } | undefined)?.retryAfterMs ?? 1000;
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, waitMs);
          opts.signal?.addEventListener(
            'abort',
            () => {
              clearTimeout(timer);
              reject(opts.signal?.reason);
            },
            { once: true },
          );
        });
      }
    }
  };

  const sendOnce = async (
    method: string,
    path: string,
    opts: RequestOptions,
    timeoutMs: number | undefined,
  ) => {
    const url = new URL(access.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {
      ...(await access.authHeaders()),
      accept: opts.accept ?? 'application/json',
    };
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      headers['content-type'] = opts.contentType ?? 'application/json';
    }
    const signals = [opts.signal, timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    const response = await sendHttp(url, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
      agent,
      ...(signals.length > 0 ? { signal: AbortSignal.any(signals) } : {}),
    });
    if (response.status >= 400) {
      const text = await response.text();
      let status: { reason?: string; message?: string; details?: unknown } = {};
      try {
        status = JSON.parse(text);
      } catch {
        status = { message: text };
      }
      throw new ApiError(
        response.status,
        status.reason ?? String(response.status),
        `${method} ${path}: ${status.message ?? response.statusText}`,
        response.status === 429
          ? {
              ...(status.details as object),
              retryAfterMs: retryAfterMs(response.header('retry-after') ?? null),
            }
          : status.details,
      );
    }
    return response;
  };

  const request = async <T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> => {
    const response = await send(method, path, opts, requestTimeoutMs);
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  };

  const loadGroup = async (apiVersion: string) => {
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const list = await request<{ resources: Array<{ name: string; kind: string; namespaced: boolean }> }>(
      'GET',
      base,
    );
    const byKind = new Map<string, ResourceInfo>();
    for (const r of list.resources) {
      if (r.name.includes('/')) continue;
      byKind.set(r.kind, { apiVersion, kind: r.kind, plural: r.name, namespaced: r.namespaced });
    }
    return byKind;
  };

  const resource = async (apiVersion: string, kind: string): Promise<ResourceInfo> => {
    for (let attempt = 0; attempt < 2; attempt++) {
      let group = discovery.get(apiVersion);
      if (!group) {
        group = loadGroup(apiVersion);
        discovery.set(apiVersion, group);
        group.catch(() => discovery.delete(apiVersion));
      }
      const info = (await group).get(kind);
      if (info) return info;
      // A CRD installed after the first look: discover again once.
      discovery.delete(apiVersion);
    }
    throw new ApiError(404, 'NotFound', `the API server does not serve ${kind} in ${apiVersion}`);
  };

  const path = (info: ResourceInfo, namespace?: string, name?: string, subresource?: string) => {
    const base = info.apiVersion.includes('/') ? `/apis/${info.apiVersion}` : `/api/${info.apiVersion}`;
    const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    const n = name ? `/${encodeURIComponent(name)}` : '';
    const sub = name && subresource ? `/${subresource}` : '';
    return `${base}${ns}/${info.plural}${n}${sub}`;
  };

  const objectPath = async (ref: ObjectRef, subresource?: string) =>
    path(await resource(ref.apiVersion, ref.kind), ref.metadata.namespace, ref.metadata.name, subresource);

  return {
    access,
    request,
    resource,
    path,
    async get<T extends KubeObject>(ref: ObjectRef) {
      try {
        return await request<T>('GET', await objectPath(ref));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async list<T extends KubeObject>(
      apiVersion: string,
      kind: string,
      opts: {
        namespace?: string;
        labelSelector?: string;
        fieldSelector?: string;
        limit?: number;
        continue?: string;
        metadataOnly?: boolean;
      } = {},
    ) {
      const info = await resource(apiVersion, kind);
      const list = await request<{ items: T[]; metadata: { resourceVersion: string; continue?: string } }>(
        'GET',
        path(info, opts.namespace),
        {
          query: {
            labelSelector: opts.labelSelector,
            fieldSelector: opts.fieldSelector,
            limit: opts.limit,
            continue: opts.continue,
          },
          ...(opts.metadataOnly ? { accept: metadataOnly.list } : {}),
        },
      );
      // List items carry no apiVersion and kind; the cache and reconcilers want whole objects.
      for (const item of list.items) {
        item.apiVersion = apiVersion;
        item.kind = kind;
      }
      return {
        items: list.items,
        resourceVersion: list.metadata.resourceVersion,
        continue: list.metadata.continue,
      };
    },
    async create<T extends KubeObject>(obj: T, opts: { fieldManager?: string } = {}) {
      const info = await resource(obj.apiVersion, obj.kind);
      return request<T>('POST', path(info, obj.metadata.namespace), {
        body: obj,
        query: { fieldManager: opts.fieldManager },
      });
    },
    async update<T extends KubeObject>(obj: T, opts: { fieldManager?: string; subresource?: string } = {}) {
      return request<T>('PUT', await objectPath(obj, opts.subresource), {
        body: obj,
        query: { fieldManager: opts.fieldManager },
      });
    },
    async patch<T extends KubeObject>(
      ref: ObjectRef,
      patch: unknown,
      opts: { type: 'merge' | 'json' | 'strategic'; subresource?: string; fieldManager?: string },
    ) {
      return request<T>('PATCH', await objectPath(ref, opts.subresource), {
        body: patch,
        contentType: patchTypes[opts.type],
        query: { fieldManager: opts.fieldManager },
      });
    },
    async apply<T extends KubeObject>(obj: T, opts: ApplyOptions & { subresource?: string }) {
      return request<T>('PATCH', await objectPath(obj, opts.subresource), {
        body: obj,
        contentType: 'application/apply-patch+yaml',
        query: { fieldManager: opts.fieldManager, force: opts.force ?? false },
      });
    },
    async delete(ref: ObjectRef, opts: { propagationPolicy?: 'Foreground' | 'Background' | 'Orphan' } = {}) {
      try {
        await request('DELETE', await objectPath(ref), {
          body: opts.propagationPolicy ? { propagationPolicy: opts.propagationPolicy } : undefined,
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },
    async watch(watchPath, query, onEvent, signal, watchOptions = {}) {
      // However the stream ends (the caller's abort, a handler that throws on 410, bad JSON), the
      // connection is closed here, not left open until the server's timeout.
      const local = new AbortController();
      let input: Readable | undefined;
      try {
        const response = await send(
          'GET',
          watchPath,
          {
            query: { ...query, watch: true },
            signal: AbortSignal.any([signal, local.signal]),
            ...(watchOptions.metadataOnly ? { accept: metadataOnly.object } : {}),
          },
          undefined,
        );
        input = response.body;
        const lines = createInterface({ input, crlfDelay: Infinity });
        for await (const line of lines) {
          if (!line) continue;
          onEvent(JSON.parse(line) as WatchEvent);
        }
      } finally {
        // Tearing the stream down makes it emit the abort as an error; nobody reads it any more.
        input?.on('error', () => {});
        input?.destroy();
        local.abort();
      }
    },
  };
}

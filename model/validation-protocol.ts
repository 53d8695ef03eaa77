import { z } from 'zod';
import type { RunOutcome } from './runner.ts';
import type { FetchFailureReason } from './source.ts';

/**
 * What the operator asks the validator: where the file is (a URL the validator downloads under its
 * egress rules, or the bytes of a ConfigMap the operator read), and what to run it on. The validator
 * holds no cluster credentials, so the operator reads ConfigMaps and sends what they hold.
 */
export const validationRequest = z.object({
  /** Whose validation this is: capacity is shared fairly between namespaces. */
  namespace: z.string().min(1).max(63),
  source: z.union([
    z.object({
      http: z.object({
        url: z.string().min(1).max(4096),
        sha256: z.string().regex(/^[0-9a-f]{64}$/),
        timeoutSeconds: z.number().int().min(1).max(3600),
        maxSizeMiB: z.number().int().min(1).max(1_048_576),
      }),
      /** How messages name the source: a URL kept in a Secret is never echoed, even in part. */
      shownAs: z.string().max(512).optional(),
    }),
    z.object({ base64: z.string().max(2 * 2 ** 20) }),
  ]),
  /** The largest file the operator lets any model be, whatever its spec allows. */
  maxModelMiB: z.number().int().min(1).max(1_048_576),
  /**
   * validate: fetch and judge. check-source: fetch and check the digest only (the verdict for that
   * digest is known). fetch: fetch, check, and send the file back (a pool releasing a small file).
   */
  mode: z.enum(['validate', 'check-source', 'fetch']).default('validate'),
  run: z.object({
    executionProviders: z.array(z.string().min(1).max(32)).min(1).max(4),
    vectors: z.array(z.array(z.number())).max(100_000),
    inputName: z.string().max(256).optional(),
    outputName: z.string().max(256).optional(),
    elementType: z.enum(['float32', 'float64', 'int32', 'int64']).optional(),
    outputWidth: z.number().int().min(1).max(64).optional(),
    latencyRuns: z.number().int().min(0).max(10_000),
  }),
});
export type ValidationRequest = z.input<typeof validationRequest>;

export type ValidationResponse =
  | { fetched: false; reason: FetchFailureReason; message: string }
  | { fetched: true; digest: string; sizeBytes: number; outcome?: RunOutcome; base64?: string };

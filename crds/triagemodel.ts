import { z } from 'zod';
import {
  cel,
  conditions,
  configMapKeySelector,
  dnsSubdomain,
  observedGeneration,
  secretKeySelector,
  timestamp,
} from './common.ts';

/**
 * The largest model file that travels in a ConfigMap with its contract (ConfigMaps hold 1 MiB in all):
 * a configMap source may hold at most this, and a pool keeps files up to this in its release. The
 * contract's bounds below keep the rest of a release under the remaining 64 KiB.
 */
export const maxConfigMapModelBytes = 960 * 1024;

/** The five Manchester Triage System categories, from highest acuity (red, immediate) to lowest (blue). */
export const manchesterCategories = ['red', 'orange', 'yellow', 'green', 'blue'] as const;

const featureName = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z][a-z0-9_]*$/, 'must be snake_case: a lower-case letter, then letters, digits or _');

const labelName = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z][a-z0-9_-]*$/, 'must start with a lower-case letter; letters, digits, _ and - follow');

const source = z
  .object({
    configMap: configMapKeySelector
      .optional()
      .describe(
        'The model file in a ConfigMap key (binaryData); for small models, at most 960 KiB (ConfigMaps hold 1 MiB in all).',
      ),
    http: z
      .object({
        url: z
          .string()
          .max(2048)
          .regex(/^https?:\/\/[^\s]+$/, 'must be an http:// or https:// URL')
          // The same rule the CRD's CEL holds, for objects stored before it did.
          .refine((url) => !/^https?:\/\/[^/]*@/.test(url) && !url.includes('?') && !url.includes('#'), {
            message:
              'must be a URL without credentials, query or fragment: a URL that carries a token goes in a Secret (urlSecretRef)',
          })
          .optional()
          .describe('Where to download the model from, when the URL holds no secret.')
          // A CEL rule, not a pattern: the API server's refusal then names the type, never echoing a token.
          .meta(
            cel({
              rule: "!self.matches('^https?://[^/]*@') && !self.contains('?') && !self.contains('#')",
              message:
                'must be a URL without credentials, query or fragment: a URL that carries a token goes in a Secret (urlSecretRef)',
            }),
          ),
        urlSecretRef: secretKeySelector
          .optional()
          .describe(
            'A Secret key holding the URL, for URLs with credentials or a presigned query: it reaches the validator and the pods (through secretKeyRef) and appears in no other object, status, Event or log.',
          ),
        sha256: z
          .string()
          .regex(/^[a-f0-9]{64}$/, 'must be 64 lower-case hex digits')
          .describe('SHA-256 of the file; a download that does not match is refused (DigestMismatch).'),
        timeoutSeconds: z
          .number()
          .int()
          .min(1)
          .max(3600)
          .default(60)
          .describe('Time limit for the download.'),
        maxSizeMiB: z.number().int().min(1).max(4096).default(512).describe('Largest file accepted.'),
      })
      .optional()
      .describe('The model file at an HTTP(S) URL, pinned by its SHA-256 digest.')
      .meta(
        cel({
          rule: 'has(self.url) != has(self.urlSecretRef)',
          message: 'exactly one of url and urlSecretRef must be set',
        }),
      ),
    persistentVolumeClaim: z
      .object({
        claimName: dnsSubdomain.describe('The PersistentVolumeClaim holding the file.'),
        path: z
          .string()
          .min(1)
          .max(1024)
          .regex(/^[^/].*\.onnx$/, 'must be a relative path to a .onnx file')
          .describe('Path of the file inside the volume.'),
        sha256: z
          .string()
          .regex(/^[a-f0-9]{64}$/, 'must be 64 lower-case hex digits')
          .describe('SHA-256 of the file, checked before the model is served.'),
      })
      .optional()
      .describe('The model file on a PersistentVolumeClaim, pinned by its SHA-256 digest.'),
  })
  .describe('Where the model file comes from: exactly one of configMap, http and persistentVolumeClaim.')
  .meta(
    cel({
      rule: '[has(self.configMap), has(self.http), has(self.persistentVolumeClaim)].filter(x, x).size() == 1',
      message: 'exactly one of configMap, http and persistentVolumeClaim must be set',
    }),
  );

const feature = z
  .object({
    name: featureName.describe('Feature name, e.g. respiration_rate.'),
    unit: z.string().max(16).optional().describe('Unit of the value, e.g. /min, %, mmHg, °C.'),
    min: z.number().optional().describe('Smallest valid value; requests below it are refused.'),
    max: z.number().optional().describe('Largest valid value; requests above it are refused.'),
    description: z.string().max(128).optional().describe('What the feature measures.'),
  })
  .describe('One input feature, in the order the model expects it.')
  .meta(
    cel({
      rule: '!has(self.min) || !has(self.max) || self.min <= self.max',
      message: 'min must not be greater than max',
      fieldPath: '.min',
    }),
  );

const inputs = z
  .object({
    tensorName: z.string().min(1).max(128).describe('Name of the model input tensor.'),
    elementType: z
      .enum(['float32', 'float64', 'int32', 'int64'])
      .default('float32')
      .describe('Element type of the tensor.'),
    shape: z
      .array(z.number().int().min(-1))
      .min(1)
      .max(4)
      .optional()
      .describe(
        'Tensor shape; -1 for a dynamic dimension (the batch). Defaults to [-1, number of features].',
      ),
    features: z
      .array(feature)
      .min(1)
      .max(128)
      .describe('The named features, in tensor order.')
      .meta(
        cel({
          rule: 'self.all(f, self.exists_one(g, g.name == f.name))',
          message: 'feature names must be unique',
        }),
      ),
  })
  .describe('The input contract the model file must match.')
  .meta(
    cel({
      rule: '!has(self.shape) || self.shape[self.shape.size() - 1] == self.features.size()',
      message: 'the last dimension of shape must equal the number of features',
      fieldPath: '.shape',
    }),
  );

const outputs = z
  .object({
    tensorName: z
      .string()
      .min(1)
      .max(128)
      .describe('Name of the output tensor holding per-label probabilities.'),
    labels: z
      .array(labelName)
      .min(2)
      .max(16)
      .default([...manchesterCategories])
      .describe(
        'Label names in the order of the output tensor, highest acuity first. Defaults to the five Manchester categories.',
      )
      .meta(
        cel({
          rule: 'self.all(l, self.exists_one(m, m == l))',
          message: 'label names must be unique',
        }),
      ),
  })
  .describe('The output contract the model file must match.');

const goldenVector = z
  .object({
    features: z
      .array(z.number())
      .min(1)
      .max(128)
      .describe('Feature values, in the order of inputs.features.'),
    expectedLabel: labelName.describe('The label the model must give.'),
  })
  .describe('A labelled test case.');

const acceptance = z
  .object({
    goldenVectors: z
      .object({
        inline: z.array(goldenVector).min(1).max(512).optional().describe('Vectors written in the manifest.'),
        configMap: configMapKeySelector
          .optional()
          .describe('Vectors in a ConfigMap key: JSON lines of {"features": [...], "expectedLabel": "..."}.'),
      })
      .describe('The labelled vectors the model is tested on: exactly one of inline and configMap.')
      .meta(
        cel({
          rule: 'has(self.inline) != has(self.configMap)',
          message: 'exactly one of inline and configMap must be set',
        }),
      ),
    minRecall: z
      .array(
        z.object({
          label: labelName.describe('An output label.'),
          min: z.number().min(0).max(1).describe('Smallest acceptable recall for the label, 0 to 1.'),
        }),
      )
      .max(16)
      .default([])
      .describe('Recall floors per label; put the high-acuity labels first, they matter most.'),
    minAccuracy: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe('Smallest acceptable share of vectors labelled right.'),
    maxLatencyMs: z
      .object({
        p50: z
          .number()
          .min(0)
          .max(60_000)
          .optional()
          .describe('Largest acceptable median latency of one request.'),
        p99: z.number().min(0).max(60_000).optional().describe('Largest acceptable 99th-percentile latency.'),
      })
      .optional()
      .describe('Latency limits measured on the validating machine.'),
  })
  .describe('The tests a model version must pass before any pod serves it.');

export const triageModelSpec = z
  .object({
    version: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[0-9A-Za-z][0-9A-Za-z.+_-]*$/, 'must be a version such as 2.1.0 or 2026-11-er')
      .describe('The model version this manifest describes; pools serve only versions that passed.'),
    format: z.enum(['onnx']).default('onnx').describe('Model file format.'),
    source,
    inputs,
    outputs,
    acceptance,
    executionProviders: z
      .array(z.enum(['coreml', 'cpu']))
      .min(1)
      .max(2)
      .default(['coreml', 'cpu'])
      .describe(
        'onnxruntime execution providers in order of preference; each node uses the first it offers.',
      ),
  })
  .describe('An ONNX triage risk model, its contract and its acceptance tests.')
  .meta(
    cel(
      {
        rule: 'self.acceptance.minRecall.all(r, r.label in self.outputs.labels)',
        message: 'every minRecall label must be one of outputs.labels',
        fieldPath: '.acceptance.minRecall',
      },
      {
        rule: '!has(self.acceptance.goldenVectors.inline) || self.acceptance.goldenVectors.inline.all(v, v.expectedLabel in self.outputs.labels && v.features.size() == self.inputs.features.size())',
        message:
          'every golden vector must have one value per input feature and an expectedLabel from outputs.labels',
        fieldPath: '.acceptance.goldenVectors.inline',
      },
    ),
  );

export const triageModelStatus = z
  .object({
    observedGeneration,
    conditions,
    digest: z.string().max(80).optional().describe('sha256 digest of the model file last fetched.'),
    sizeBytes: z.number().int().min(0).optional().describe('Size of the model file.'),
    measuredMemoryMiB: z.number().min(0).optional().describe('Memory the loaded model session takes.'),
    latency: z
      .object({
        p50Ms: z.number().min(0).optional().describe('Median latency of one request.'),
        p99Ms: z.number().min(0).optional().describe('99th-percentile latency of one request.'),
      })
      .optional()
      .describe('Latency measured during validation.'),
    acceptance: z
      .object({
        vectors: z.number().int().min(0).describe('Golden vectors evaluated.'),
        accuracy: z.number().min(0).max(1).describe('Share labelled right.'),
        recall: z
          .array(
            z.object({
              label: z.string().describe('An output label.'),
              recall: z
                .number()
                .min(0)
                .max(1)
                .describe('Share of vectors with this expected label that got it.'),
            }),
          )
          .max(16)
          .describe('Recall per label.'),
      })
      .optional()
      .describe('Results of the last acceptance run.'),
    validatedVersion: z.string().max(64).optional().describe('The version that last passed every check.'),
    validatedDigest: z.string().max(80).optional().describe('The digest of the version that last passed.'),
    validatedAt: timestamp.optional().describe('When that version passed.'),
    verdict: z
      .object({
        digest: z.string().max(80).describe('sha256 digest of the file judged.'),
        specHash: z
          .string()
          .max(80)
          .describe('Hash of the source, contract, tests and golden vectors that judged it.'),
      })
      .optional()
      .describe(
        'What the verdict in Ready is about; while both still match, a restarted operator keeps the verdict instead of judging the file again.',
      ),
  })
  .describe('What Aurora found when it fetched, checked and tested the model.');

export type TriageModelSpec = z.infer<typeof triageModelSpec>;
export type TriageModelStatus = z.infer<typeof triageModelStatus>;

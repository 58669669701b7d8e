/**
 * A GPU node's live state, as it heartbeats it into the NATS key-value bucket. The router
 * reads these; since nodes are untrusted, every entry is validated before use.
 */
import { z } from 'zod';

export const nodesBucket = 'gitblock_nodes';
/** An entry not refreshed within this is gone: the node drops out of routing by TTL alone. */
export const heartbeatTtlMs = 15_000;
export const heartbeatIntervalMs = 3_000;

const nodeIdPattern = /^[a-z0-9][a-z0-9-]{2,62}$/;
export const nodeIdSchema = z.string().regex(nodeIdPattern, 'node ids are 3-63 lowercase letters, digits and dashes');

export const loadedModelSchema = z.object({
  id: z.string().min(1).max(64),
  /** sha256 of the GGUF file. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  /** Tokens per sequence (prompt + answer). */
  contextSize: z.number().int().positive(),
  /** Sequences, i.e. how many requests it runs at once. */
  slots: z.number().int().positive(),
});

/**
 * The node's compute as it reports it (node-llama-cpp's backend, device names and memory): a
 * claim, shown as reported and never used to route or pay. Bounded so a hostile node cannot
 * bloat every reader's copy of its heartbeat.
 */
export const hardwareSchema = z.object({
  backend: z.enum(['cuda', 'vulkan', 'metal', 'cpu']),
  devices: z.array(z.string().max(128)).max(16),
  /** Total memory models are placed in: VRAM on a GPU, RAM on CPU. Absent from older nodes. */
  memoryBytes: z.number().int().nonnegative().max(2 ** 50).optional(),
});

export const heartbeatSchema = z.object({
  nodeId: nodeIdSchema,
  operator: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
  version: z.string().max(32),
  status: z.enum(['serving', 'draining']),
  gpu: hardwareSchema,
  models: z.array(loadedModelSchema).max(32),
  /** The node's total concurrent requests (across models) and how many run now. */
  maxParallel: z.number().int().positive(),
  inFlight: z.number().int().nonnegative(),
  freeSlots: z.number().int().nonnegative(),
  /** Tokens per second over recent requests (0 when idle since start). */
  recentTokensPerSecond: z.number().nonnegative(),
  freeMemoryBytes: z.number().nonnegative(),
  /** Milliseconds since epoch when the node wrote this. */
  at: z.number().int().nonnegative(),
});

export type Heartbeat = z.infer<typeof heartbeatSchema>;
export type Hardware = z.infer<typeof hardwareSchema>;
export type LoadedModel = z.infer<typeof loadedModelSchema>;

/** KV keys allow [-/_=.a-zA-Z0-9]; node ids are a subset. */
export const heartbeatKey = (nodeId: string) => nodeId;

/**
 * Validation of inference inputs. Activities on GPU nodes re-check what the workflow sends,
 * since a node must never crash on a malformed task.
 */
import { z } from 'zod';
import { normalizeJsonSchema, type JsonSchema } from './json-schema.ts';

/** The limits of what a request may ask; the gateway's request schemas are built from these. */
export const limits = {
  maxTokens: 8192,
  messages: 256,
  stopStrings: 4,
  stopLength: 64,
  contentChars: 200_000,
  temperature: 2,
  topK: 1000,
  seed: 2 ** 32 - 1,
  /** presence_penalty and frequency_penalty lie in [-penalty, penalty], as OpenAI's. */
  penalty: 2,
  /** logit_bias: at most this many tokens, each biased within [-bias, bias], as OpenAI's. */
  logitBiasTokens: 300,
  logitBias: 100,
  /** Token ids are below this in every model served (a node checks its own vocabulary). */
  tokenId: 2 ** 24,
  /** Alternatives per token in logprobs (OpenAI's top_logprobs). */
  topLogprobs: 20,
  /**
   * Log-probabilities one answer may carry, alternatives included: (top_logprobs + 1) ×
   * max_tokens. They travel in the result's Temporal payload, about 20 bytes each.
   */
  logprobEntries: 32_768,
  /** Tools one request may define, and calls one assistant message may carry. */
  tools: 64,
  toolCalls: 64,
  toolDescriptionChars: 4096,
} as const;

/** OpenAI's function names: what a model's call syntax can carry unambiguously. */
export const toolNamePattern = /^[a-zA-Z0-9_-]{1,64}$/;

/** A JSON schema that normalizeJsonSchema made: its normal form is itself. */
const normalSchema = z.custom<JsonSchema>((s) => {
  try {
    return JSON.stringify(normalizeJsonSchema(s)) === JSON.stringify(s);
  } catch {
    return false;
  }
}, 'not a JSON schema in normal form');

const grammarSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('json') }),
  z.object({ type: z.literal('json_schema'), schema: normalSchema }),
  z.object({
    type: z.literal('tool_calls'),
    tools: z.array(z.object({ name: z.string().regex(toolNamePattern), parameters: normalSchema })).min(1).max(limits.tools),
    parallel: z.boolean(),
  }),
]);

/**
 * A token id as a JSON key: decimal, up to 8 digits, below limits.tokenId (2^24 = 16777216). A
 * pattern rather than a check of the number, so that the OpenAPI document states it exactly.
 */
const tokenIdKey = /^(?:\d{1,7}|0\d{7}|1[0-5]\d{6}|16[0-6]\d{5}|167[0-6]\d{4}|1677[0-6]\d{3}|16777[01]\d{2}|1677720\d|1677721[0-5])$/;

/**
 * Each sampling parameter's range, defined once: the workflow's input (below) and the gateway's
 * request bodies (gateway/schemas/completions.ts, OpenAI's names) are built from these.
 */
export const samplingFields = {
  temperature: z.number().min(0).max(limits.temperature),
  topP: z.number().gt(0).max(1),
  topK: z.number().int().min(1).max(limits.topK),
  maxTokens: z.number().int().min(1).max(limits.maxTokens),
  stopString: z.string().min(1).max(limits.stopLength),
  seed: z.number().int().min(0).max(limits.seed),
  penalty: z.number().min(-limits.penalty).max(limits.penalty),
  logitBias: z
    .record(z.string().regex(tokenIdKey, `a token id, below ${limits.tokenId}`), z.number().min(-limits.logitBias).max(limits.logitBias))
    .refine((b) => Object.keys(b).length <= limits.logitBiasTokens, `at most ${limits.logitBiasTokens} tokens`)
    // What the refinement checks, for the OpenAPI document (zod has no key count of its own).
    .meta({ maxProperties: limits.logitBiasTokens }),
} as const;

export const samplingSchema = z.object({
  temperature: samplingFields.temperature,
  topP: samplingFields.topP.optional(),
  topK: samplingFields.topK.optional(),
  maxTokens: samplingFields.maxTokens,
  stop: z.array(samplingFields.stopString).max(limits.stopStrings).optional(),
  seed: samplingFields.seed.optional(),
  presencePenalty: samplingFields.penalty.optional(),
  frequencyPenalty: samplingFields.penalty.optional(),
  logitBias: samplingFields.logitBias.optional(),
  grammar: grammarSchema.optional(),
});

export const chatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: z.string().max(limits.contentChars),
  toolCalls: z
    .array(z.object({ id: z.string().min(1).max(256), name: z.string().regex(toolNamePattern), arguments: z.string().max(limits.contentChars) }))
    .max(limits.toolCalls)
    .optional(),
  toolCallId: z.string().min(1).max(256).optional(),
});

export const toolSpecSchema = z.object({
  name: z.string().regex(toolNamePattern),
  description: z.string().max(limits.toolDescriptionChars).optional(),
  parameters: normalSchema,
});

export const inferInputSchema = z
  .object({
    requestId: z.string().regex(/^[\w-]{1,64}$/),
    modelId: z.string().min(1).max(64),
    messages: z.array(chatMessageSchema).min(1).max(limits.messages).optional(),
    prompt: z.string().max(limits.contentChars).optional(),
    sampling: samplingSchema,
    subject: z.string().regex(/^gitblock\.tokens\.[\w-]{1,64}$/),
    fresh: z.boolean().optional(),
    logprobs: z.object({ top: z.number().int().min(0).max(limits.topLogprobs) }).optional(),
    tools: z.array(toolSpecSchema).max(limits.tools).optional(),
  })
  .refine((i) => (i.messages === undefined) !== (i.prompt === undefined), 'give exactly one of messages or prompt')
  .refine((i) => !i.logprobs || (i.logprobs.top + 1) * i.sampling.maxTokens <= limits.logprobEntries, `at most ${limits.logprobEntries} log-probabilities`);

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const duration = z.number().min(0).max(1e12);

/**
 * What a node returns from `infer`. Nodes are untrusted: the workflow checks the shape (a
 * malformed result would otherwise throw inside workflow code and stall it) and the facts it
 * can check against the request: this request, this model, no more tokens than allowed, and a
 * continuation no longer than the answer.
 */
export function inferResultSchema(input: {
  requestId: string;
  modelId: string;
  sampling: { maxTokens: number };
  logprobs?: { top: number } | undefined;
  tools?: readonly { name: string }[] | undefined;
}) {
  const toolNames = new Set((input.tools ?? []).map((t) => t.name));
  const text = z.string().max(256);
  // Rounded on the node; a probability of 1 may come out a hair above 0.
  const logprob = z.number().min(-1e4).max(1e-6);
  const entry = z.tuple([text, logprob, z.array(z.tuple([text, logprob])).max(input.logprobs?.top ?? 0).optional()]);
  return z
    .object({
      requestId: z.literal(input.requestId),
      nodeId: z.string().min(1).max(64),
      modelId: z.literal(input.modelId),
      modelHash: z.string().regex(/^[0-9a-f]{64}$/),
      text: z.string().max(limits.maxTokens * 64),
      tokens: z.array(count).max(input.sampling.maxTokens),
      finishReason: z.enum(['stop', 'length']),
      usage: z.object({ promptTokens: count, completionTokens: count, totalTokens: count }),
      continuedFromTokens: count,
      timings: z.object({ timeToFirstTokenMs: duration, tokensPerSecond: duration, totalMs: duration }),
      // Calls only to the request's own tools, and only when it had some.
      toolCalls: z
        .array(z.object({ name: z.string().refine((n) => toolNames.has(n), 'not one of the request’s tools'), arguments: z.string().max(limits.contentChars) }))
        .min(1)
        .max(limits.toolCalls)
        .optional(),
      // Required when asked (a node that leaves them out failed the request); unread otherwise.
      logprobs: input.logprobs ? z.array(entry) : z.unknown().optional(),
    })
    .refine((r) => r.continuedFromTokens <= r.tokens.length, 'continuedFromTokens exceeds the answer')
    .refine((r) => !input.logprobs || (r.logprobs as unknown[]).length <= r.tokens.length, 'logprobs must be one per token of the text');
}

/**
 * One token chunk on a request's subject. Chunks come from untrusted nodes: the gateway relays
 * them to the client and a continuing node builds on them, so both read them through this.
 */
export const tokenChunkSchema = z.object({
  seq: count,
  nodeId: z.string().max(64),
  tokens: z.array(count).max(65_536),
  text: z.string().max(1_048_576),
  finish: z
    .object({
      reason: z.enum(['stop', 'length']),
      usage: z.object({ promptTokens: count, completionTokens: count, totalTokens: count }),
    })
    .optional(),
});

/** What a verifier node returns from `verifyClaim`: untrusted too, checked before it is judged. */
export const verifierReportSchema = z.object({
  verifierNodeId: z.string().min(1).max(64),
  positions: z.array(
    z.object({
      // Probabilities computed in floating point may exceed 1 by a rounding error.
      p: z.number().min(0).max(1 + 1e-6),
      rank: count,
      pTop: z.number().min(0).max(1 + 1e-6),
      logQ: z.number().max(1e-6).nullable(),
      entropy: z.number().min(0).max(1e6),
      variance: z.number().min(0).max(1e12),
    }),
  ),
  endProbability: z.number().min(0).max(1 + 1e-6),
  endRank: count,
  stopStringSeen: z.boolean(),
  grammarViolations: count,
  checkMs: duration,
});

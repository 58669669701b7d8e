/**
 * Request and response bodies of the OpenAI-compatible endpoints, in zod: the routes validate
 * with them, the handlers are typed from them, and the OpenAPI document is generated from them.
 * Every parameter OpenAI defines is either honoured, accepted as having no effect on the answer
 * (identifiers and metadata: `user`, `metadata`, ...), or refused with a 400 that names it: a
 * client that asks for something this network does not do learns it at once, instead of getting
 * an answer that quietly ignored it. The ranges come from the one schema of inference inputs,
 * domain/inference-schema.ts.
 */
import { z } from 'zod';
import { limits, samplingFields, toolNamePattern } from '../../domain/inference-schema.ts';

export const gatewayLimits = {
  bodyBytes: 1_048_576,
  messages: limits.messages,
  contentChars: limits.contentChars,
  maxTokens: limits.maxTokens,
  defaultMaxTokens: 512,
  stop: limits.stopStrings,
} as const;

/** OpenAI accepts null for an optional parameter, meaning "not given"; so does this gateway. */
const sampling = {
  temperature: samplingFields.temperature.nullish(),
  top_p: samplingFields.topP.nullish(),
  /** Not OpenAI's: llama.cpp's top-k, which the network samples with (40 when not given). */
  top_k: samplingFields.topK.nullish(),
  max_tokens: samplingFields.maxTokens.nullish(),
  max_completion_tokens: samplingFields.maxTokens.nullish(),
  seed: samplingFields.seed.nullish(),
  n: z.literal(1).nullish(),
  stop: z.union([samplingFields.stopString, z.array(samplingFields.stopString).max(gatewayLimits.stop)]).nullish(),
  presence_penalty: samplingFields.penalty.nullish(),
  frequency_penalty: samplingFields.penalty.nullish(),
  logit_bias: samplingFields.logitBias.nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.strictObject({ include_usage: z.boolean().optional() }).nullish(),
  // Accepted, with no effect on the answer: who is asking, and labels for the caller's own use.
  user: z.string().max(256).nullish(),
  safety_identifier: z.string().max(256).nullish(),
  prompt_cache_key: z.string().max(256).nullish(),
  metadata: z
    .record(z.string().max(64), z.string().max(512))
    .refine((m) => Object.keys(m).length <= 16, 'at most 16 keys')
    .meta({ maxProperties: 16 })
    .nullish(),
  // Accepted only with the value that asks for nothing this network does not do.
  store: z.literal(false).nullish(),
  service_tier: z.enum(['auto', 'default']).nullish(),
};

const textPart = z.strictObject({ type: z.literal('text'), text: z.string().max(gatewayLimits.contentChars) });

const toolName = z.string().regex(toolNamePattern);

const toolCall = z.strictObject({
  id: z.string().min(1).max(256),
  type: z.literal('function'),
  function: z.strictObject({ name: toolName, arguments: z.string().max(gatewayLimits.contentChars) }),
});

/** A message's content: a string, or text parts. */
const content = z.union([z.string().max(gatewayLimits.contentChars), z.array(textPart).max(64)], {
  error: (issue) => (issue.input == null ? 'a message of this role needs content' : undefined),
});

/**
 * What any message may carry besides its role's own fields: a name, and OpenAI's empty fields
 * that a client echoes back from an earlier answer (`refusal`, `annotations`, ...), accepted when
 * empty; tool calls only empty (an assistant's may hold calls), a tool_call_id never (a tool's
 * must have one).
 */
const anyMessage = {
  name: z.string().max(64).optional(),
  refusal: z.null().optional(),
  annotations: z.array(z.never()).max(0).nullish(),
  audio: z.null().optional(),
  function_call: z.null().optional(),
  tool_calls: z.array(z.unknown()).max(0, 'only assistant messages carry tool_calls').nullish(),
  tool_call_id: z.never({ error: 'only tool messages carry a tool_call_id' }).optional(),
};

/**
 * Messages, by role, as OpenAI's document has them: each role's fields in the schema, so the
 * OpenAPI document says which go with which. What ties one message to another (a tool message
 * answers an earlier call by its id; every call is answered before the chat goes on) is checked
 * where they are read (gateway/openai-request.ts).
 */
const message = z.discriminatedUnion('role', [
  z.strictObject({ ...anyMessage, role: z.enum(['system', 'developer', 'user']), content }),
  z
    .strictObject({ ...anyMessage, role: z.literal('assistant'), content: content.nullish(), tool_calls: z.array(toolCall).max(limits.toolCalls).nullish() })
    .refine((m) => m.content != null || !!m.tool_calls?.length, { message: 'an assistant message needs content or tool_calls', path: ['content'] })
    // What the refinement checks, for the OpenAPI document.
    .meta({
      anyOf: [
        { required: ['content'], properties: { content: { not: { type: 'null' } } } },
        { required: ['tool_calls'], properties: { tool_calls: { type: 'array', minItems: 1 } } },
      ],
    }),
  z.strictObject({ ...anyMessage, role: z.literal('tool'), content, tool_call_id: z.string().min(1).max(256) }),
]);

/** A JSON schema a client sends (a tool's parameters, a response format): checked further where read. */
const jsonSchemaObject = z.record(z.string(), z.unknown());

/** `tools`: functions only, their parameters a JSON schema checked further where read. */
const tools = z
  .array(
    z.strictObject({
      type: z.literal('function'),
      function: z.strictObject({
        name: toolName,
        description: z.string().max(limits.toolDescriptionChars).optional(),
        parameters: jsonSchemaObject.optional(),
        strict: z.boolean().nullish(),
      }),
    }),
  )
  .max(limits.tools)
  .nullish();

const toolChoice = z
  .union([z.enum(['none', 'auto', 'required']), z.strictObject({ type: z.literal('function'), function: z.strictObject({ name: toolName }) })])
  .nullish();

/** `response_format`: which of the three, checked further (the schema itself) where it is used. */
const responseFormat = z
  .strictObject({
    type: z.enum(['text', 'json_object', 'json_schema']),
    json_schema: z
      .strictObject({
        name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/).optional(),
        description: z.string().max(4096).optional(),
        schema: jsonSchemaObject.optional(),
        strict: z.boolean().nullish(),
      })
      .optional(),
  })
  .nullish();

const model = z.string().min(1).max(64);

export const chatCompletionBody = z.strictObject({
  model,
  messages: z.array(message).min(1).max(gatewayLimits.messages),
  response_format: responseFormat,
  modalities: z.array(z.literal('text')).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(limits.topLogprobs).nullish(),
  tools,
  tool_choice: toolChoice,
  parallel_tool_calls: z.boolean().nullish(),
  ...sampling,
});

export const completionBody = z.strictObject({
  model,
  prompt: z.string().max(gatewayLimits.contentChars),
  best_of: z.literal(1).nullish(),
  echo: z.literal(false).nullish(),
  suffix: z.null().optional(),
  /** Legacy: log-probabilities with this many alternatives per token. */
  logprobs: z.number().int().min(0).max(limits.topLogprobs).nullish(),
  ...sampling,
});

export type ChatCompletionBody = z.infer<typeof chatCompletionBody>;
export type CompletionBody = z.infer<typeof completionBody>;
export type SamplingBody = Pick<ChatCompletionBody, keyof typeof sampling>;
export type MessageBody = ChatCompletionBody['messages'][number];
export type ResponseFormatBody = NonNullable<ChatCompletionBody['response_format']>;

const usage = z.object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int(), total_tokens: z.number().int() });
/** Which node served the request and why: the network's receipt, under `gitblock`. */
const receipt = z.union([
  z.object({ request_id: z.string(), node_id: z.string(), route_reason: z.string(), model_hash: z.string() }),
  // Answered by the fallback provider (gateway/fallback.ts): no node served it.
  z.object({ request_id: z.string(), served_by: z.literal('fallback'), node_id: z.null() }),
]);
const finishReason = z.enum(['stop', 'length', 'tool_calls']).nullable();
const answer = { id: z.string(), created: z.number().int(), model: z.string(), system_fingerprint: z.string(), usage, gitblock: receipt };

export const chatCompletionResponse = z.object({
  ...answer,
  object: z.literal('chat.completion'),
  choices: z.array(
    z.object({
      index: z.number().int(),
      message: z.object({ role: z.literal('assistant'), content: z.string().nullable(), tool_calls: z.array(toolCall).optional() }),
      finish_reason: finishReason,
      logprobs: z.unknown(),
    }),
  ),
});

export const completionResponse = z.object({
  ...answer,
  object: z.literal('text_completion'),
  choices: z.array(z.object({ index: z.number().int(), text: z.string(), finish_reason: finishReason, logprobs: z.unknown() })),
});

/** With `stream: true`: server-sent events, `data: <chunk JSON>` each, ending with `data: [DONE]`. */
/**
 * A streamed answer's events, described one event at a time, as tools read a `text/event-stream`
 * schema under OpenAPI 3.0 and 3.1 (3.2 names it `itemSchema`): each event's `data` is one chunk
 * as JSON, and the last is `[DONE]`.
 */
export const eventStream = z
  .object({
    data: z.string().describe('One chunk object as JSON (the answer\'s shape, with `delta` for chat), or `[DONE]` last'),
    event: z.string().optional(),
    id: z.string().optional(),
    retry: z.number().int().optional(),
  })
  .describe('Server-sent events: `data: <chunk>` lines, the last `data: [DONE]`');

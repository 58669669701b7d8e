/**
 * Request bodies of the OpenAI-compatible endpoints. Every parameter OpenAI defines is either
 * honoured, accepted as having no effect on the answer (identifiers and metadata: `user`,
 * `metadata`, ...), or refused with a 400 that names it: a client that asks for something this
 * network does not do learns it at once, instead of getting an answer that quietly ignored it.
 * The limits come from the one schema of inference inputs, domain/inference-schema.ts.
 */
import { limits } from '../../domain/inference-schema.ts';

export const gatewayLimits = {
  bodyBytes: 1_048_576,
  messages: limits.messages,
  contentChars: limits.contentChars,
  maxTokens: limits.maxTokens,
  defaultMaxTokens: 512,
  stop: limits.stopStrings,
} as const;

/** OpenAI accepts null for an optional parameter, meaning "not given"; so does this gateway. */
const orNull = <T extends { type: string }>(schema: T) => ({ ...schema, type: [schema.type, 'null'] });

const sampling = {
  temperature: orNull({ type: 'number', minimum: 0, maximum: limits.temperature }),
  top_p: orNull({ type: 'number', exclusiveMinimum: 0, maximum: 1 }),
  /** Not OpenAI's: llama.cpp's top-k, which the network samples with (40 when not given). */
  top_k: orNull({ type: 'integer', minimum: 1, maximum: limits.topK }),
  max_tokens: orNull({ type: 'integer', minimum: 1, maximum: gatewayLimits.maxTokens }),
  max_completion_tokens: orNull({ type: 'integer', minimum: 1, maximum: gatewayLimits.maxTokens }),
  seed: orNull({ type: 'integer', minimum: 0, maximum: limits.seed }),
  n: orNull({ type: 'integer', minimum: 1, maximum: 1 }),
  stop: {
    anyOf: [
      { type: 'string', minLength: 1, maxLength: limits.stopLength },
      { type: 'array', maxItems: gatewayLimits.stop, items: { type: 'string', minLength: 1, maxLength: limits.stopLength } },
      { type: 'null' },
    ],
  },
  presence_penalty: orNull({ type: 'number', minimum: -limits.penalty, maximum: limits.penalty }),
  frequency_penalty: orNull({ type: 'number', minimum: -limits.penalty, maximum: limits.penalty }),
  logit_bias: {
    type: ['object', 'null'],
    maxProperties: limits.logitBiasTokens,
    propertyNames: { pattern: '^[0-9]{1,8}$' },
    additionalProperties: { type: 'number', minimum: -limits.logitBias, maximum: limits.logitBias },
  },
  stream: orNull({ type: 'boolean' }),
  stream_options: { type: ['object', 'null'], additionalProperties: false, properties: { include_usage: { type: 'boolean' } } },
  // Accepted, with no effect on the answer: who is asking, and labels for the caller's own use.
  user: orNull({ type: 'string', maxLength: 256 }),
  safety_identifier: orNull({ type: 'string', maxLength: 256 }),
  prompt_cache_key: orNull({ type: 'string', maxLength: 256 }),
  metadata: { type: ['object', 'null'], maxProperties: 16, additionalProperties: { type: 'string', maxLength: 512 } },
  // Accepted only with the value that asks for nothing this network does not do.
  store: { enum: [false, null] },
  service_tier: { enum: ['auto', 'default', null] },
} as const;

const textPart = { type: 'object', required: ['type', 'text'], additionalProperties: false, properties: { type: { const: 'text' }, text: { type: 'string' } } } as const;

const toolName = { type: 'string', pattern: '^[a-zA-Z0-9_-]{1,64}$' } as const;

const toolCall = {
  type: 'object',
  required: ['id', 'type', 'function'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 256 },
    type: { const: 'function' },
    function: {
      type: 'object',
      required: ['name', 'arguments'],
      additionalProperties: false,
      properties: { name: toolName, arguments: { type: 'string', maxLength: gatewayLimits.contentChars } },
    },
  },
} as const;

/**
 * Messages; which fields go with which role is checked where they are read
 * (gateway/openai-request.ts). An assistant message a client echoes back from an earlier answer
 * carries OpenAI's empty fields (`refusal`, `annotations`, ...): accepted when empty.
 */
const message = {
  type: 'object',
  required: ['role'],
  additionalProperties: false,
  properties: {
    role: { enum: ['system', 'developer', 'user', 'assistant', 'tool'] },
    content: { anyOf: [{ type: 'string', maxLength: gatewayLimits.contentChars }, { type: 'array', maxItems: 64, items: textPart }, { type: 'null' }] },
    name: { type: 'string', maxLength: 64 },
    refusal: { type: 'null' },
    annotations: { type: ['array', 'null'], maxItems: 0 },
    audio: { type: 'null' },
    function_call: { type: 'null' },
    tool_calls: { type: ['array', 'null'], maxItems: limits.toolCalls, items: toolCall },
    tool_call_id: { type: 'string', minLength: 1, maxLength: 256 },
  },
} as const;

/** `tools`: functions only, their parameters a JSON schema checked further where read. */
const tools = {
  type: ['array', 'null'],
  maxItems: limits.tools,
  items: {
    type: 'object',
    required: ['type', 'function'],
    additionalProperties: false,
    properties: {
      type: { const: 'function' },
      function: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          name: toolName,
          description: { type: 'string', maxLength: limits.toolDescriptionChars },
          parameters: { type: 'object' },
          strict: { type: ['boolean', 'null'] },
        },
      },
    },
  },
} as const;

const toolChoice = {
  anyOf: [
    { enum: ['none', 'auto', 'required', null] },
    {
      type: 'object',
      required: ['type', 'function'],
      additionalProperties: false,
      properties: { type: { const: 'function' }, function: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: toolName } } },
    },
  ],
} as const;

/** `response_format`: which of the three, checked further (the schema itself) where it is used. */
const responseFormat = {
  type: ['object', 'null'],
  required: ['type'],
  additionalProperties: false,
  properties: {
    type: { enum: ['text', 'json_object', 'json_schema'] },
    json_schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        name: { type: 'string', pattern: '^[a-zA-Z0-9_-]{1,64}$' },
        description: { type: 'string', maxLength: 4096 },
        schema: { type: 'object' },
        strict: { type: ['boolean', 'null'] },
      },
    },
  },
} as const;

export const chatCompletionBody = {
  $id: 'ChatCompletionRequest',
  type: 'object',
  required: ['model', 'messages'],
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 64 },
    messages: { type: 'array', minItems: 1, maxItems: gatewayLimits.messages, items: message },
    response_format: responseFormat,
    modalities: { type: ['array', 'null'], items: { const: 'text' } },
    logprobs: orNull({ type: 'boolean' }),
    top_logprobs: orNull({ type: 'integer', minimum: 0, maximum: limits.topLogprobs }),
    tools,
    tool_choice: toolChoice,
    parallel_tool_calls: orNull({ type: 'boolean' }),
    ...sampling,
  },
} as const;

export const completionBody = {
  $id: 'CompletionRequest',
  type: 'object',
  required: ['model', 'prompt'],
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 64 },
    prompt: { type: 'string', maxLength: gatewayLimits.contentChars },
    best_of: orNull({ type: 'integer', minimum: 1, maximum: 1 }),
    echo: { enum: [false, null] },
    suffix: { type: 'null' },
    /** Legacy: log-probabilities with this many alternatives per token. */
    logprobs: orNull({ type: 'integer', minimum: 0, maximum: limits.topLogprobs }),
    ...sampling,
  },
} as const;

export interface SamplingBody {
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
}

export type ResponseFormatBody =
  | { type: 'text' | 'json_object'; json_schema?: JsonSchemaFormatBody }
  | { type: 'json_schema'; json_schema?: JsonSchemaFormatBody };

export interface JsonSchemaFormatBody {
  name?: string;
  description?: string;
  schema?: Record<string, unknown>;
  strict?: boolean | null;
}

export interface MessageBody {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  content?: string | { type: 'text'; text: string }[] | null;
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[] | null;
  tool_call_id?: string;
}

export interface ToolBody {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean | null };
}

export type ToolChoiceBody = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } } | null;

export interface ChatCompletionBody extends SamplingBody {
  model: string;
  messages: MessageBody[];
  response_format?: ResponseFormatBody | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  tools?: ToolBody[] | null;
  tool_choice?: ToolChoiceBody;
  parallel_tool_calls?: boolean | null;
}

export interface CompletionBody extends SamplingBody {
  model: string;
  prompt: string;
  logprobs?: number | null;
}

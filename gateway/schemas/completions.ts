/**
 * Request bodies of the OpenAI-compatible endpoints. Fields OpenAI clients commonly send but
 * this network does not use (penalties, logit_bias, user, ...) are accepted and ignored, so
 * existing clients work unchanged; the fields we use are validated with their limits.
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

const sampling = {
  temperature: { type: 'number', minimum: 0, maximum: 2 },
  top_p: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
  top_k: { type: 'integer', minimum: 1, maximum: 1000 },
  max_tokens: { type: 'integer', minimum: 1, maximum: gatewayLimits.maxTokens },
  max_completion_tokens: { type: 'integer', minimum: 1, maximum: gatewayLimits.maxTokens },
  seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
  n: { type: 'integer', minimum: 1, maximum: 1 },
  stop: {
    anyOf: [
      { type: 'string', minLength: 1, maxLength: limits.stopLength },
      { type: 'array', maxItems: gatewayLimits.stop, items: { type: 'string', minLength: 1, maxLength: limits.stopLength } },
      { type: 'null' },
    ],
  },
  stream: { type: 'boolean' },
  stream_options: { type: ['object', 'null'], properties: { include_usage: { type: 'boolean' } } },
} as const;

const textPart = { type: 'object', required: ['type', 'text'], properties: { type: { const: 'text' }, text: { type: 'string' } } } as const;

export const chatCompletionBody = {
  $id: 'ChatCompletionRequest',
  type: 'object',
  required: ['model', 'messages'],
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 64 },
    messages: {
      type: 'array',
      minItems: 1,
      maxItems: gatewayLimits.messages,
      items: {
        type: 'object',
        required: ['role', 'content'],
        properties: {
          role: { enum: ['system', 'developer', 'user', 'assistant'] },
          content: { anyOf: [{ type: 'string', maxLength: gatewayLimits.contentChars }, { type: 'array', maxItems: 64, items: textPart }] },
          name: { type: 'string', maxLength: 64 },
        },
      },
    },
    ...sampling,
  },
} as const;

export const completionBody = {
  $id: 'CompletionRequest',
  type: 'object',
  required: ['model', 'prompt'],
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 64 },
    prompt: { type: 'string', maxLength: gatewayLimits.contentChars },
    ...sampling,
  },
} as const;

export interface SamplingBody {
  temperature?: number;
  top_p?: number;
  top_k?: number;
  max_tokens?: number;
  max_completion_tokens?: number;
  seed?: number;
  stop?: string | string[] | null;
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
}

export interface ChatCompletionBody extends SamplingBody {
  model: string;
  messages: { role: 'system' | 'developer' | 'user' | 'assistant'; content: string | { type: 'text'; text: string }[] }[];
}

export interface CompletionBody extends SamplingBody {
  model: string;
  prompt: string;
}

export const errorResponse = {
  $id: 'Error',
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { message: { type: 'string' }, type: { type: 'string' }, param: { type: ['string', 'null'] }, code: { type: 'string' } },
    },
  },
} as const;

/**
 * What an OpenAI request body asks of the network, in the network's own terms (domain/inference.ts):
 * the messages or prompt and the Sampling a node generates under, and a verifier re-scores
 * under. The body has passed its JSON schema (gateway/schemas/completions.ts); what that cannot
 * check (a response_format's JSON schema) is checked here, with the parameter named.
 */
import type { AnswerGrammar, ChatMessage, InferInput, Sampling } from '../domain/inference.ts';
import { limits } from '../domain/inference-schema.ts';
import { JsonSchemaError, normalizeJsonSchema } from '../domain/json-schema.ts';
import { ApiError } from './errors.ts';
import { gatewayLimits, type ChatCompletionBody, type CompletionBody, type ResponseFormatBody, type SamplingBody } from './schemas/completions.ts';

/** A value the body gave, or undefined for absent and null alike. */
const given = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

export function samplingOf(body: SamplingBody & { response_format?: ResponseFormatBody | null }): Sampling {
  const stop = body.stop == null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop;
  const bias = given(body.logit_bias);
  return {
    temperature: body.temperature ?? 1,
    topP: given(body.top_p),
    topK: given(body.top_k),
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? gatewayLimits.defaultMaxTokens,
    stop: stop?.length ? stop : undefined,
    seed: given(body.seed),
    // Zero penalties and an empty bias change nothing: left out, so the input says only what applies.
    presencePenalty: body.presence_penalty || undefined,
    frequencyPenalty: body.frequency_penalty || undefined,
    logitBias: bias && Object.keys(bias).length ? bias : undefined,
    grammar: grammarOf(given(body.response_format)),
  };
}

function grammarOf(format: ResponseFormatBody | undefined): AnswerGrammar | undefined {
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json' };
  const schema = format.json_schema?.schema;
  if (!format.json_schema) throw new ApiError('invalid_body', "response_format of type 'json_schema' needs a json_schema object", 'response_format.json_schema');
  // OpenAI allows a json_schema without a schema: any JSON object then.
  if (schema === undefined) return { type: 'json' };
  try {
    return { type: 'json_schema', schema: normalizeJsonSchema(schema) };
  } catch (err) {
    if (!(err instanceof JsonSchemaError)) throw err;
    throw new ApiError('invalid_body', `response_format.json_schema.schema${err.pointer}: ${err.reason}`, 'response_format.json_schema.schema');
  }
}

export function messagesOf(body: ChatCompletionBody): ChatMessage[] {
  const messages = body.messages.map((m) => ({
    // OpenAI's newer 'developer' role is a system message to an open model's chat template.
    role: m.role === 'developer' ? ('system' as const) : m.role,
    content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
  }));
  const chars = messages.reduce((n, m) => n + m.content.length, 0);
  if (chars > gatewayLimits.contentChars) {
    throw new ApiError('invalid_body', `The messages hold ${chars} characters; the limit is ${gatewayLimits.contentChars}`, 'messages');
  }
  return messages;
}

/**
 * The log-probabilities asked for: chat's `logprobs` with `top_logprobs` alternatives, legacy
 * completions' `logprobs` alternatives; at most `limits.logprobEntries` in all.
 */
export function logprobsOf(body: ChatCompletionBody | CompletionBody, kind: 'chat' | 'completion', maxTokens: number): InferInput['logprobs'] {
  let top: number;
  const param = kind === 'chat' ? 'top_logprobs' : 'logprobs';
  if (kind === 'chat') {
    const chat = body as ChatCompletionBody;
    if (chat.top_logprobs != null && chat.logprobs !== true) throw new ApiError('invalid_body', 'top_logprobs needs logprobs: true', 'top_logprobs');
    if (chat.logprobs !== true) return undefined;
    top = chat.top_logprobs ?? 0;
  } else {
    const legacy = body as CompletionBody;
    if (legacy.logprobs == null) return undefined;
    top = legacy.logprobs;
  }
  if ((top + 1) * maxTokens > limits.logprobEntries) {
    throw new ApiError(
      'invalid_body',
      `${param} ${top} with max_tokens ${maxTokens} asks for ${(top + 1) * maxTokens} log-probabilities; the limit is ${limits.logprobEntries} ((${param} + 1) × max_tokens): lower one of them`,
      param,
    );
  }
  return { top };
}

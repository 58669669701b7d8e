/**
 * What an OpenAI request body asks of the network, in the network's own terms (domain/inference.ts):
 * the messages or prompt and the Sampling a node generates under, and a verifier re-scores
 * under. The body has passed its JSON schema (gateway/schemas/completions.ts); what that cannot
 * check (a response_format's JSON schema) is checked here, with the parameter named.
 */
import type { AnswerGrammar, ChatMessage, InferInput, Sampling, ToolSpec } from '../domain/inference.ts';
import { limits } from '../domain/inference-schema.ts';
import { JsonSchemaError, normalizeJsonSchema } from '../domain/json-schema.ts';
import { ApiError } from './errors.ts';
import { gatewayLimits, type ChatCompletionBody, type CompletionBody, type MessageBody, type ResponseFormatBody, type SamplingBody } from './schemas/completions.ts';

/** A value the body gave, or undefined for absent and null alike. */
const given = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

export function samplingOf(body: SamplingBody & Pick<ChatCompletionBody, 'response_format' | 'tools' | 'tool_choice' | 'parallel_tool_calls'>): Sampling {
  const stop = body.stop == null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop;
  const bias = given(body.logit_bias);
  const format = grammarOf(given(body.response_format));
  const tooling = toolingOf(body);
  // One grammar shapes an answer: a response format's, or the calls a tool_choice requires.
  if (format && tooling.tools) {
    throw new ApiError('invalid_body', 'response_format cannot be combined with tools here, unless tool_choice is "none"', 'response_format');
  }
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
    grammar: format ?? tooling.grammar,
  };
}

/** The tools the model is shown (none for tool_choice "none"), and the grammar of the calls it must make. */
export function toolingOf(body: Pick<ChatCompletionBody, 'tools' | 'tool_choice' | 'parallel_tool_calls'>): { tools?: ToolSpec[]; grammar?: AnswerGrammar } {
  const tools = (body.tools ?? []).map((t, i): ToolSpec => {
    try {
      // OpenAI's function without parameters takes none: an empty object.
      const parameters = normalizeJsonSchema(t.function.parameters ?? { type: 'object', properties: {} });
      return { name: t.function.name, ...(t.function.description ? { description: t.function.description } : {}), parameters };
    } catch (err) {
      if (!(err instanceof JsonSchemaError)) throw err;
      throw new ApiError('invalid_body', `tools.${i}.function.parameters${err.pointer}: ${err.reason}`, `tools.${i}.function.parameters`);
    }
  });
  const names = new Set(tools.map((t) => t.name));
  if (names.size < tools.length) throw new ApiError('invalid_body', 'two tools have the same name', 'tools');
  const choice = body.tool_choice ?? (tools.length ? 'auto' : 'none');
  if (choice === 'none') return {};
  if (!tools.length) throw new ApiError('invalid_body', 'tool_choice needs tools to choose from', 'tool_choice');
  if (choice === 'auto') return { tools };
  const parallel = body.parallel_tool_calls ?? true;
  const callable = (list: ToolSpec[]) => list.map((t) => ({ name: t.name, parameters: t.parameters }));
  if (choice === 'required') return { tools, grammar: { type: 'tool_calls', tools: callable(tools), parallel } };
  const named = tools.find((t) => t.name === choice.function.name);
  if (!named) throw new ApiError('invalid_body', `tool_choice names '${choice.function.name}', which is not one of the tools`, 'tool_choice.function.name');
  return { tools, grammar: { type: 'tool_calls', tools: callable([named]), parallel: false } };
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

/** A message's text: a string, text parts joined, or '' for none. */
const textOf = (content: MessageBody['content']) => (content == null ? '' : typeof content === 'string' ? content : content.map((p) => p.text).join(''));

/**
 * The chat's messages, with which fields go with which role checked: tool calls on assistant
 * messages only, their arguments JSON, and every call answered by a tool message naming it.
 */
export function messagesOf(body: ChatCompletionBody): ChatMessage[] {
  const unanswered = new Map<string, string>();
  const messages = body.messages.map((m, i): ChatMessage => {
    const at = `messages.${i}`;
    if (m.role !== 'assistant' && m.tool_calls?.length) throw new ApiError('invalid_body', 'only assistant messages carry tool_calls', `${at}.tool_calls`);
    if (m.role !== 'tool' && m.tool_call_id !== undefined) throw new ApiError('invalid_body', 'only tool messages carry a tool_call_id', `${at}.tool_call_id`);
    if (m.content == null && !(m.role === 'assistant' && m.tool_calls?.length)) throw new ApiError('invalid_body', `a ${m.role} message needs content`, `${at}.content`);
    if (m.role === 'tool') {
      if (m.tool_call_id === undefined || !unanswered.delete(m.tool_call_id)) {
        throw new ApiError('invalid_body', `a tool message must answer an earlier assistant tool call by its id; '${m.tool_call_id ?? ''}' is none that is still unanswered`, `${at}.tool_call_id`);
      }
      return { role: 'tool', content: textOf(m.content), toolCallId: m.tool_call_id };
    }
    if (m.role === 'assistant') {
      const toolCalls = (m.tool_calls ?? []).map((c, j) => {
        try {
          JSON.parse(c.function.arguments);
        } catch {
          throw new ApiError('invalid_body', 'a tool call\'s arguments must be JSON', `${at}.tool_calls.${j}.function.arguments`);
        }
        unanswered.set(c.id, `${at}.tool_calls.${j}`);
        return { id: c.id, name: c.function.name, arguments: c.function.arguments };
      });
      return { role: 'assistant', content: textOf(m.content), ...(toolCalls.length ? { toolCalls } : {}) };
    }
    // OpenAI's newer 'developer' role is a system message to an open model's chat template.
    return { role: m.role === 'developer' ? 'system' : m.role, content: textOf(m.content) };
  });
  const open = [...unanswered.values()][0];
  if (open !== undefined) throw new ApiError('invalid_body', 'every tool call needs a tool message with its result before the chat goes on', open);
  const chars = messages.reduce((n, m) => n + m.content.length + (m.toolCalls ?? []).reduce((k, c) => k + c.arguments.length, 0), 0);
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

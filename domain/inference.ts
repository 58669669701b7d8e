/**
 * The contract between the request workflow, the `infer` activity on a GPU node, and the
 * gateway that relays the token stream. Pure types and names: workflow code imports this.
 */
import type { JsonSchema } from './json-schema.ts';

export type Role = 'system' | 'user' | 'assistant' | 'tool';

/**
 * A message of a chat. An assistant message may carry the tool calls it made; a tool message
 * is one call's result. Both are rendered with the model's own chat template and
 * function-calling syntax (node-llama-cpp's chat wrapper for the model).
 */
export interface ChatMessage {
  role: Role;
  content: string;
  /** Assistant messages: the calls it made, in order. */
  toolCalls?: ToolCall[] | undefined;
  /** Tool messages: the call this is the result of. */
  toolCallId?: string | undefined;
}

export interface ToolCall {
  id: string;
  name: string;
  /** The arguments as JSON text, as OpenAI's API carries them. */
  arguments: string;
}

/** A function the model may call: OpenAI's `tools[].function`, its parameters in normal form. */
export interface ToolSpec {
  name: string;
  description?: string | undefined;
  parameters: JsonSchema;
}

/**
 * How the answer is drawn, and everything that constrains the drawing: a node generates under
 * exactly these, and a verifier re-scores under exactly these (see domain/verification.ts).
 */
export interface Sampling {
  /** 0 = greedy. */
  temperature: number;
  topP?: number | undefined;
  topK?: number | undefined;
  maxTokens: number;
  stop?: string[] | undefined;
  seed?: number | undefined;
  /**
   * OpenAI's presence_penalty and frequency_penalty: subtracted from a token's logit once if it
   * occurs in the answer so far, and once per occurrence. Over the answer's tokens only, not
   * the prompt's.
   */
  presencePenalty?: number | undefined;
  frequencyPenalty?: number | undefined;
  /** OpenAI's logit_bias: token id (a decimal string, as OpenAI's keys) → added to that token's logit. */
  logitBias?: Record<string, number> | undefined;
  /**
   * A grammar the answer must follow, as what it is made from, never compiled: every node that
   * serves or checks the request builds the same grammar from it.
   */
  grammar?: AnswerGrammar | undefined;
}

/**
 * `json`: any JSON object (response_format json_object); `json_schema`: that schema, in normal
 * form (domain/json-schema.ts); `tool_calls`: one call (or, with `parallel`, one or more) of
 * these tools in the model's own function-calling syntax, arguments valid for their schema
 * (tool_choice `required` or a named function).
 */
export type AnswerGrammar =
  | { type: 'json' }
  | { type: 'json_schema'; schema: JsonSchema }
  | { type: 'tool_calls'; tools: { name: string; parameters: JsonSchema }[]; parallel: boolean };

export interface InferInput {
  requestId: string;
  modelId: string;
  /** Exactly one of messages (chat) or prompt (plain completion). */
  messages?: ChatMessage[] | undefined;
  prompt?: string | undefined;
  sampling: Sampling;
  /** The NATS subject the tokens are streamed to (a JetStream subject, see tokenSubject). */
  subject: string;
  /**
   * Set by the workflow on its first attempt: nothing can have been delivered yet, so the node
   * skips reading the stream before its first token (fencing still refuses a stream that is not
   * empty). A retry or a failover leaves it unset and continues from what was delivered.
   */
  fresh?: boolean | undefined;
  /** Log-probabilities of the answer's tokens, with this many alternatives each (0 for none), when asked. */
  logprobs?: { top: number } | undefined;
  /**
   * Functions the model is shown (chat only; tool_choice `none` shows none). Whether it must
   * call one is `sampling.grammar`'s `tool_calls`.
   */
  tools?: ToolSpec[] | undefined;
}

/**
 * One answer token's log-probability under the distribution the node drew it from (the
 * model's, after logit_bias, penalties and grammar, then top-k, top-p and temperature when
 * sampling; the model's own at temperature 0), as `[its text where it stands, logprob]`, and
 * when alternatives were asked the most probable tokens there, most probable first. Tuples,
 * not objects: an answer's worth travels in one Temporal payload.
 */
export type TokenLogprob = [text: string, logprob: number, top?: [text: string, logprob: number][]];

export type FinishReason = 'stop' | 'length';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface InferResult {
  requestId: string;
  nodeId: string;
  modelId: string;
  /** sha256 of the GGUF file that served the request. */
  modelHash: string;
  text: string;
  tokens: number[];
  finishReason: FinishReason;
  usage: Usage;
  /** Tokens that an earlier, failed attempt had delivered and this one continued from. */
  continuedFromTokens: number;
  /**
   * The calls the answer made, in the model's function-calling syntax, parsed; `text` is then
   * what came before them. The token stream carries that text only.
   */
  toolCalls?: { name: string; arguments: string }[] | undefined;
  /**
   * When the input asked for them: one per token of the answer's text, from the first (a stop
   * string's tokens, which the text leaves out, have none).
   */
  logprobs?: TokenLogprob[] | undefined;
  timings: {
    /** From the activity's start to its first new token, ms. */
    timeToFirstTokenMs: number;
    /** New tokens per second over the generation. */
    tokensPerSecond: number;
    totalMs: number;
  };
}

/** One message on a request's token subject. `seq` counts from 0 with no gaps. */
export interface TokenChunk {
  seq: number;
  nodeId: string;
  tokens: number[];
  text: string;
  /** Present on the last chunk only. */
  finish?: { reason: FinishReason; usage: Usage } | undefined;
}

/** Progress an `infer` activity heartbeats: enough to see where a generation stands. */
export interface InferProgress {
  nextSeq: number;
  completionTokens: number;
}

export const tokenStreamName = 'GITBLOCK_TOKENS';
export const tokenSubjectPrefix = 'gitblock.tokens';
export const tokenSubject = (requestId: string) => `${tokenSubjectPrefix}.${requestId}`;
/** Published by the gateway when a client goes away, so generation stops without waiting for a heartbeat. */
export const cancelSubject = (requestId: string) => `gitblock.cancel.${requestId}`;

/** Stable error types, used as ApplicationFailure types; workflows branch on these (domain/failures.ts). */
export { inferErrors } from './failures.ts';

/**
 * What a node's inference engine offers the activities that run on it (infer, verifyClaim), and
 * the errors it throws. The engine itself (workers/node/engine.ts, node-llama-cpp) implements
 * it; the activities see only this, so they depend on no worker code, and tests can wrap an
 * engine (test/faulty-engine.ts) without touching the activities.
 */
import type { Token } from 'node-llama-cpp';
import type { ChatMessage, FinishReason, Sampling, TokenLogprob, ToolSpec } from './inference.ts';
import { BaseError } from './errors.ts';
import type { PositionStat } from './verification.ts';

/** Stable codes: the infer activity maps them to failure types. */
export type EngineErrorCode = 'PROMPT_TOO_LONG' | 'NO_FREE_SEQUENCE' | 'ABORTED' | 'BAD_INPUT';

export class EngineError extends BaseError<EngineErrorCode> {
  override name = 'EngineError';
  constructor(
    code: EngineErrorCode,
    message: string,
    /** For BAD_INPUT: the API parameter at fault, so the client is told which. */
    readonly param?: string,
  ) {
    super(message, { code });
  }
}

export interface GenerateRequest {
  /** The rendered prompt. */
  promptTokens: Token[];
  /** Answer tokens already delivered by an earlier attempt; generation continues after them. */
  prefixTokens?: Token[];
  /**
   * The text delivered with prefixTokens. What those tokens decode to beyond it was held back
   * by the earlier attempt (a possible stop string, an incomplete character); this one releases it.
   */
  prefixText?: string;
  sampling: Sampling;
  signal?: AbortSignal;
  /** Called for each new token with the text that became final with it (may be ''). */
  onToken?: (token: Token, text: string) => void;
  /** Called at most once, after the last onToken, with held-back text released when generation ended. */
  onText?: (text: string) => void;
  /** Awaited after each token before the next is evaluated (test fault modes pace generation with it). */
  afterToken?: () => Promise<void>;
  /** Log-probabilities of every answer token (the prefix's too), with this many alternatives each. */
  logprobs?: { top: number } | undefined;
  /** With tools: text from where a call starts is withheld from the stream (see toolCallMarker). */
  hold?: string | undefined;
}

export interface GenerateResult {
  /** New tokens only (not the prefix). */
  tokens: Token[];
  /** New text only (not the prefix's text). */
  text: string;
  finishReason: FinishReason;
  timeToFirstTokenMs: number;
  generationMs: number;
  /** When asked: one per answer token, the prefix's first. */
  logprobs?: TokenLogprob[] | undefined;
}

/** What a verifier measures of a claimed answer: the judge (domain/verification.ts) decides from it. */
export interface ScoreReport {
  positions: PositionStat[];
  endProbability: number;
  endRank: number;
  /** The claimed text reached a stop string (the request's or its grammar's): a legitimate early end. */
  stopStringSeen: boolean;
  /** Claimed tokens the request's grammar forbids where they stand. */
  grammarViolations: number;
}

/** One loaded model, serving requests on its context's sequences. */
export interface InferenceEngine {
  readonly modelId: string;
  /** sha256 of the model file: what registration and verification match on. */
  readonly modelHash: string;
  readonly contextSize: number;
  /** The chat template applied to messages (and the tools they may call), tokenized. */
  renderChat(messages: readonly ChatMessage[], tools?: readonly ToolSpec[]): Token[];
  renderPrompt(prompt: string): Token[];
  /** Where a tool call starts in this model's answers: text from it on is withheld from the stream. */
  readonly toolCallMarker: string;
  parseToolCalls(text: string, tools: readonly ToolSpec[]): { name: string; arguments: string }[] | undefined;
  detokenize(tokens: readonly Token[], lastTokens?: readonly Token[]): string;
  /** @throws EngineError PROMPT_TOO_LONG, BAD_INPUT (naming the parameter), ABORTED. */
  generate(request: GenerateRequest): Promise<GenerateResult>;
  /** Log-probabilities of a given answer (a delivered one, when a retry finds it complete). */
  logprobsOf(promptTokens: Token[], answer: Token[], text: string, sampling: Sampling, top: number): Promise<TokenLogprob[]>;
  /** Teacher forcing: how likely the engine finds each claimed token, for a verifier. */
  score(promptTokens: Token[], claimed: Token[], sampling: Sampling): Promise<ScoreReport>;
}

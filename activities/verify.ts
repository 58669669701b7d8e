/**
 * `verifyClaim`, run by a verifier node on its own queue: re-scores another node's claimed
 * answer by teacher forcing and reports compact per-position statistics. The judging happens
 * in the spot-check workflow, so a verifier measures but does not decide.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Token } from 'node-llama-cpp';
import { verifyErrors } from '../domain/failures.ts';
import { inferErrors, type ChatMessage, type FinishReason, type Sampling, type ToolSpec } from '../domain/inference.ts';
import type { VerifierReport } from '../domain/verification.ts';
import { EngineError, type InferenceEngine } from '../domain/engine.ts';

export interface VerifyInput {
  requestId: string;
  modelId: string;
  /** The claimant's model file: a verifier with another file cannot judge it. */
  modelHash: string;
  messages?: ChatMessage[] | undefined;
  prompt?: string | undefined;
  /** The tools the claimant's prompt documented: the same prompt is rendered here. */
  tools?: ToolSpec[] | undefined;
  sampling: Sampling;
  tokens: number[];
  finishReason: FinishReason;
}

export function createVerifyActivities(deps: { nodeId: string; engines: ReadonlyMap<string, InferenceEngine> }) {
  return {
    async verifyClaim(input: VerifyInput): Promise<VerifierReport> {
      const started = performance.now();
      const engine = deps.engines.get(input.modelId);
      if (!engine) throw ApplicationFailure.retryable(`node ${deps.nodeId} does not serve ${input.modelId}`, inferErrors.modelNotLoaded);
      if (engine.modelHash !== input.modelHash) {
        throw ApplicationFailure.nonRetryable(`node ${deps.nodeId} serves ${input.modelId} from another file (${engine.modelHash.slice(0, 12)}…)`, verifyErrors.modelMismatch);
      }
      if (!Array.isArray(input.tokens) || input.tokens.some((t) => !Number.isInteger(t) || t < 0)) {
        throw ApplicationFailure.nonRetryable('claimed tokens must be token ids', inferErrors.badInput);
      }
      const prompt = input.messages ? engine.renderChat(input.messages, input.tools) : engine.renderPrompt(input.prompt ?? '');
      Context.current().heartbeat();
      let scored;
      try {
        scored = await engine.score(prompt, input.tokens as Token[], input.sampling);
      } catch (err) {
        // A request its own node could not have served (a bias or grammar this model refuses).
        if (err instanceof EngineError && err.code === 'BAD_INPUT') throw ApplicationFailure.nonRetryable(err.message, inferErrors.badInput);
        throw err;
      }
      return { verifierNodeId: deps.nodeId, ...scored, checkMs: performance.now() - started };
    },
  };
}

export type VerifyActivities = ReturnType<typeof createVerifyActivities>;

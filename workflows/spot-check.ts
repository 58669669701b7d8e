/**
 * `check-<requestId>`: a spot check of one served answer, run as a child of the request
 * workflow that does not delay the answer (the parent does not wait for it). A node of another
 * operator, serving the same model file, re-scores the claim; if it disagrees, a third node of
 * a third operator decides (two of three). Verifiers are established nodes only (active, with
 * a clean record of checks of their own, or of a seed operator: `domain/verifiers.ts`), so a
 * freshly registered operator can neither void an honest node's reward nor settle a tie-break.
 * The verdict goes to the claimant's node actor, and a failed check voids the request's accrual.
 */
import { ActivityFailure, getExternalWorkflowHandle, log, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { LedgerActivities } from '../activities/ledger.ts';
import type { RequestActivities } from '../activities/requests.ts';
import type { RoutingActivities } from '../activities/routing.ts';
import type { VerifyActivities, VerifyInput } from '../activities/verify.ts';
import { verifierReportSchema } from '../domain/inference-schema.ts';
import { judge, type Verdict, type VerifierReport } from '../domain/verification.ts';
import { controlRetry, taskQueues, timeouts, verifyRetry, workflowIds } from '../temporal.config.ts';
import { verificationVerdictSignal } from './node-actor.ts';

const control = proxyLocalActivities<RoutingActivities & RequestActivities & LedgerActivities>({ startToCloseTimeout: timeouts.controlStartToClose, retry: controlRetry });

function verifierOn(nodeId: string) {
  return proxyActivities<VerifyActivities>({
    taskQueue: taskQueues.node(nodeId),
    scheduleToStartTimeout: timeouts.verifyScheduleToStart,
    startToCloseTimeout: timeouts.verifyStartToClose,
    heartbeatTimeout: timeouts.verifyHeartbeat,
    retry: verifyRetry,
  }).verifyClaim;
}

export interface SpotCheckInput {
  claim: VerifyInput & { nodeId: string; operator: string };
  promptTokensEstimate: number;
}

export interface SpotCheckOutcome {
  status: 'passed' | 'failed' | 'unverified';
  verdicts: { verifierNodeId: string; operator: string; verdict: Verdict; checkMs: number }[];
  reason: string;
}

/** The first established verifier (of operators not excluded) that manages to score the claim. */
async function scoreElsewhere(input: SpotCheckInput, excludeOperators: string[], round: number) {
  const decision = await control.route({
    requestId: `${input.claim.requestId}-check-${round}`,
    modelId: input.claim.modelId,
    promptTokens: input.promptTokensEstimate + input.claim.tokens.length,
    maxTokens: 1,
    excludeOperators,
    verify: { claimantNodeId: input.claim.nodeId },
  });
  for (const candidate of decision.ranked) {
    try {
      const raw = await verifierOn(candidate.nodeId)({ ...input.claim });
      // Verifiers are untrusted nodes too: a malformed report would throw in judge() and stall
      // this workflow; it counts as this verifier failing, and the next candidate is asked.
      const parsed = verifierReportSchema.safeParse(raw);
      if (!parsed.success || parsed.data.verifierNodeId !== candidate.nodeId) {
        log.warn('verifier returned an invalid report', { nodeId: candidate.nodeId, error: parsed.success ? 'wrong verifier id' : parsed.error.issues[0]?.message });
        continue;
      }
      const report: VerifierReport = parsed.data;
      return { report, operator: candidate.operator };
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : err;
      log.warn('verifier could not score the claim', { nodeId: candidate.nodeId, error: (cause as Error)?.message });
    }
  }
  return undefined;
}

export async function spotCheckWorkflow(input: SpotCheckInput): Promise<SpotCheckOutcome> {
  const { claim } = input;
  const claimShape = { sampling: claim.sampling, finishReason: claim.finishReason, tokenCount: claim.tokens.length };
  const verdicts: SpotCheckOutcome['verdicts'] = [];
  let outcome: SpotCheckOutcome;

  // A node never verifies its own operator's answer.
  const first = await scoreElsewhere(input, [claim.operator], 1);
  if (!first) {
    // The accrual stays: without an established verifier there is no evidence against the answer.
    outcome = { status: 'unverified', verdicts, reason: 'no established verifier of another operator could score this answer' };
  } else {
    const v1 = judge(claimShape, first.report);
    verdicts.push({ verifierNodeId: first.report.verifierNodeId, operator: first.operator, verdict: v1, checkMs: first.report.checkMs });
    if (v1.passed) {
      outcome = { status: 'passed', verdicts, reason: v1.reason };
    } else {
      // Disagreement: a third operator decides, two of three.
      const second = await scoreElsewhere(input, [claim.operator, first.operator], 2);
      if (!second) {
        outcome = { status: 'unverified', verdicts, reason: `one verifier disagreed (${v1.reason}) and no established verifier of a third operator was available` };
      } else {
        const v2 = judge(claimShape, second.report);
        verdicts.push({ verifierNodeId: second.report.verifierNodeId, operator: second.operator, verdict: v2, checkMs: second.report.checkMs });
        outcome = v2.passed
          ? { status: 'passed', verdicts, reason: `overruled: ${v2.reason}` }
          : { status: 'failed', verdicts, reason: v1.reason };
      }
    }
  }

  if (outcome.status !== 'unverified') {
    try {
      await getExternalWorkflowHandle(workflowIds.node(claim.nodeId)).signal(verificationVerdictSignal, { requestId: claim.requestId, passed: outcome.status === 'passed', at: Date.now() });
    } catch {
      log.warn('no node actor to tell the verdict', { nodeId: claim.nodeId });
    }
  }
  const voided = outcome.status === 'failed' ? await control.voidAccrual({ requestId: claim.requestId, reason: `spot check failed: ${outcome.reason}` }) : undefined;
  await control.recordRequest({
    requestId: claim.requestId,
    status: 'completed',
    fields: { verification: { status: outcome.status, reason: outcome.reason, verdicts: outcome.verdicts, accrualVoided: voided?.voided ?? false } },
  });
  if (outcome.status === 'failed') log.warn('spot check failed', { nodeId: claim.nodeId, reason: outcome.reason });
  return outcome;
}


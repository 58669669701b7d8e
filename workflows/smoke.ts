/**
 * The smoke workflow proves the wiring of every service in one run: Temporal schedules an
 * activity that generates tokens with llama.cpp, writes MongoDB, publishes on NATS and reads
 * the chain.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { SmokeActivities, SmokeReport } from '../activities/smoke.ts';
import { controlRetry } from '../temporal.config.ts';

const { smokeCheck } = proxyActivities<SmokeActivities>({
  startToCloseTimeout: '2 minutes',
  retry: controlRetry,
});

export async function smokeWorkflow(input: { prompt: string; maxTokens: number }): Promise<SmokeReport> {
  return smokeCheck(input);
}

/**
 * Settles an epoch by hand (`npm run settle -- --epoch N`): starts `settle-<N>` on the control
 * task queue, or attaches to it when it is already running or done, and prints the outcome.
 *
 *   tsx workers/settle.ts (--epoch N | --last) [--task-queue NAME] [--no-wait]
 *
 * Exit codes: 0 settled (or started, with --no-wait), 1 the settlement failed, 2 bad input.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { ApplicationFailure, WorkflowIdReusePolicy } from '@temporalio/common';
import { formatUnits } from 'viem';
import { loadLocalConfig } from '../config/env.ts';
import { connectTemporalClient } from '../connections/temporal.ts';
import { lastCompleteEpoch } from '../domain/emission.ts';
import type { EpochSummary } from '../domain/settlement.ts';
import { taskQueues, workflowIds } from '../temporal.config.ts';
import { settlementWorkflow } from '../workflows/settlement.ts';
import { codedError, walk } from '../domain/errors.ts';

export class SettleUsageError extends codedError('SETTLE_USAGE_INVALID') {
  override name = 'SettleUsageError';
}

export interface SettleCommand {
  epoch: number | 'last';
  taskQueue: string;
  wait: boolean;
}

export function parseSettleArgs(args: string[]): SettleCommand {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: { epoch: { type: 'string' }, last: { type: 'boolean' }, 'task-queue': { type: 'string' }, 'no-wait': { type: 'boolean' } },
    }));
  } catch (err) {
    throw new SettleUsageError((err as Error).message.split('\n')[0] ?? 'bad arguments');
  }
  if ((values.epoch === undefined) === (values.last !== true)) throw new SettleUsageError('give --epoch N or --last');
  let epoch: number | 'last' = 'last';
  if (values.epoch !== undefined) {
    if (!/^\d{1,15}$/.test(values.epoch)) throw new SettleUsageError(`--epoch: expected a whole number, got ${values.epoch}`);
    epoch = Number(values.epoch);
  }
  const taskQueue = values['task-queue'] ?? taskQueues.control;
  if (!/^[\w.-]{1,200}$/.test(taskQueue)) throw new SettleUsageError('--task-queue: letters, digits, dot, dash and underscore only');
  return { epoch, taskQueue, wait: values['no-wait'] !== true };
}

/** Starts (or finds) `settle-<epoch>` and, with `wait`, returns its outcome. */
export async function runSettle(client: Client, epoch: number, options: { taskQueue: string; wait: boolean }): Promise<EpochSummary | undefined> {
  const workflowId = workflowIds.settlement(epoch);
  let handle;
  try {
    handle = await client.workflow.start(settlementWorkflow, {
      workflowId,
      taskQueue: options.taskQueue,
      args: [{ epoch }],
      // Every step resumes from the epoch's record, so a failed settlement may simply run again;
      // a completed one is only reported.
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    handle = client.workflow.getHandle<typeof settlementWorkflow>(workflowId);
  }
  return options.wait ? handle.result() : undefined;
}

/** The innermost business failure of a failed settlement, as one line. */
export function describeFailure(err: unknown): string {
  const failure = walk(err, (e) => e instanceof ApplicationFailure) as ApplicationFailure | undefined;
  if (failure) return `${failure.message}${failure.type ? ` (${failure.type})` : ''}`;
  const cause = walk(err);
  return cause instanceof Error ? cause.message : String(cause);
}

export function formatSummary(s: EpochSummary): string {
  const gbt = (v: string | undefined) => (v === undefined ? '-' : `${formatUnits(BigInt(v), 18)} GBT`);
  return [
    `epoch ${s.epoch}: ${s.status}`,
    `  window     ${new Date(s.windowStartMs).toISOString()} .. ${new Date(s.windowEndMs).toISOString()}`,
    `  accruals   ${s.entries ?? 0}, accrued ${gbt(s.accruedTotal)}`,
    `  available  ${gbt(s.available)}${s.capped ? ' (accruals exceeded it: paid pro rata)' : ''}`,
    `  paid       ${gbt(s.paid)} to ${s.operators ?? 0} operators`,
    ...(s.root ? [`  root       ${s.root}`] : []),
    ...(s.postTx ? [`  posted in  ${s.postTx} (block ${s.postBlock ?? '?'})`] : []),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  let command: SettleCommand;
  try {
    command = parseSettleArgs(argv);
  } catch (err) {
    process.stderr.write(`settle: ${(err as Error).message}\nusage: tsx workers/settle.ts (--epoch N | --last) [--task-queue NAME] [--no-wait]\n`);
    return 2;
  }
  // A running `npm start` of this checkout: its Temporal and its epochs, unless variables say otherwise.
  const config = loadLocalConfig();
  const epoch = command.epoch === 'last' ? lastCompleteEpoch(Date.now(), { genesis: config.GITBLOCK_GENESIS, epochSeconds: config.GITBLOCK_EPOCH_SECONDS }) : command.epoch;
  if (epoch < 0) {
    process.stderr.write('settle: no epoch has ended yet since genesis\n');
    return 2;
  }
  const client = await connectTemporalClient({ address: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE });
  try {
    const summary = await runSettle(client, epoch, command);
    console.log(summary ? formatSummary(summary) : `started ${workflowIds.settlement(epoch)} on ${command.taskQueue}`);
    return 0;
  } catch (err) {
    process.stderr.write(`settle: ${workflowIds.settlement(epoch)} failed: ${describeFailure(err)}\n`);
    return 1;
  } finally {
    await client[Symbol.asyncDispose]();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}

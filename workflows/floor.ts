/**
 * Temporal's own floor, for `bench/gateway-latency.ts`: the least a workflow that runs one
 * activity on another task queue can cost on this server. GitBlock's request workflow does at
 * least that much (its `infer` runs on a node's queue), so its added latency is read against it.
 */
import { proxyActivities } from '@temporalio/workflow';

export interface FloorActivities {
  /** Returns the time (ms since epoch, the activity worker's clock) at which it ran. */
  floorTouch(): Promise<number>;
}

export async function floorWorkflow(taskQueue: string): Promise<number> {
  const { floorTouch } = proxyActivities<FloorActivities>({ taskQueue, startToCloseTimeout: '10 seconds', retry: { maximumAttempts: 1 } });
  return floorTouch();
}

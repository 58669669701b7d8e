/**
 * Serving: one Temporal worker on `node.<nodeId>` and one on `model.<modelId>` per loaded
 * model, all running the same `infer` activity and sharing one pool of `maxParallel` slots.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createInferActivities, NodeLoad } from '../../activities/infer.ts';
import type { TaskStreams } from '../../activities/token-stream.ts';
import { createVerifyActivities } from '../../activities/verify.ts';
import type { InferenceEngine } from '../../domain/engine.ts';
import { taskQueues } from '../../temporal.config.ts';
import { SharedSlots } from './slots.ts';

export interface ServeOptions {
  nodeId: string;
  /** The worker connection: to the edge on a GPU node (carrying the session), to Temporal elsewhere. */
  connection: NativeConnection;
  namespace: string;
  streams: TaskStreams;
  engines: ReadonlyMap<string, InferenceEngine>;
  maxParallel: number;
  /** How long shutdown waits for in-flight requests before cancelling them. */
  shutdownGraceMs: number;
}

export class NodeServer {
  readonly load = new NodeLoad();
  private running: Promise<void> | undefined;

  private constructor(
    private readonly workers: Worker[],
    private readonly connection: NativeConnection,
    readonly slots: SharedSlots,
  ) {}

  static async start(options: ServeOptions): Promise<NodeServer> {
    const queues = [taskQueues.node(options.nodeId), ...[...options.engines.keys()].map((id) => taskQueues.model(id))];
    if (options.maxParallel < queues.length) {
      throw new Error(
        `--max-parallel ${options.maxParallel} is too small: this node polls ${queues.length} task queues (its own and one per model) and each poller holds a slot; use at least ${queues.length}`,
      );
    }
    const slots = new SharedSlots(options.maxParallel);
    const connection = options.connection;
    const server = new NodeServer([], connection, slots);
    const activities = {
      ...createInferActivities({ nodeId: options.nodeId, engines: options.engines, streams: options.streams, load: server.load }),
      ...createVerifyActivities({ nodeId: options.nodeId, engines: options.engines }),
    };
    try {
      for (const taskQueue of queues) {
        server.workers.push(
          await Worker.create({
            connection,
            namespace: options.namespace,
            taskQueue,
            activities,
            identity: `${options.nodeId}@${taskQueue}`,
            tuner: {
              activityTaskSlotSupplier: slots.supplier(),
              workflowTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
              localActivityTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
              nexusTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
            },
            // One poller per queue: an idle poller holds a slot, and the pool is shared.
            activityTaskPollerBehavior: { type: 'simple-maximum', maximum: 1 },
            // Cancellation reaches a generation through heartbeats: keep them frequent.
            maxHeartbeatThrottleInterval: '1 second',
            defaultHeartbeatThrottleInterval: '1 second',
            shutdownGraceTime: `${options.shutdownGraceMs} milliseconds`,
          }),
        );
      }
    } catch (err) {
      await connection.close();
      throw err;
    }
    server.running = Promise.all(server.workers.map((w) => w.run())).then(() => undefined);
    return server;
  }

  get inFlight(): number {
    return this.load.inFlight;
  }

  /** Resolves when every worker has stopped (after shutdown, or on a fatal worker error). */
  get done(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /** Stops polling, lets in-flight requests finish within the grace period, then closes. */
  async shutdown(): Promise<void> {
    for (const worker of this.workers) if (worker.getState() === 'RUNNING') worker.shutdown();
    try {
      await this.done;
    } finally {
      await this.connection.close();
    }
  }
}

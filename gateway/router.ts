/**
 * Routing at the gateway, as it admits a request: the same rule and the same in-memory views as
 * the control worker's `route` (activities/routing.ts), so the request workflow's first task
 * only schedules `infer` instead of running a local activity first. The gateway also knows
 * exactly when each of its requests ends, so its count of the slots they hold is released then.
 */
import type { Db } from 'mongodb';
import type { LiveNodes } from '../activities/live-nodes.ts';
import { createRoutingActivities, NodeDirectory, RouteLoad, type RouteInput } from '../activities/routing.ts';
import type { RouteDecision } from '../domain/routing.ts';

export interface RequestRouter {
  route(input: RouteInput): Promise<RouteDecision>;
  /** The request ended: the slot it took is free again in this router's view. */
  release(requestId: string): void;
}

export class GatewayRouter implements RequestRouter {
  private readonly load = new RouteLoad();
  private readonly routing: ReturnType<typeof createRoutingActivities>;

  private constructor(private readonly directory: NodeDirectory, liveNodes: LiveNodes, db: Db) {
    this.routing = createRoutingActivities({ db, liveNodes, directory, load: this.load });
  }

  /** `liveNodes`: the gateway's live view (registered nodes only). */
  static async start(db: Db, liveNodes: LiveNodes): Promise<GatewayRouter> {
    return new GatewayRouter(await new NodeDirectory(db).start(), liveNodes, db);
  }

  route(input: RouteInput): Promise<RouteDecision> {
    return this.routing.route(input);
  }

  release(requestId: string): void {
    this.load.release(requestId);
  }

  stop(): void {
    this.directory.stop();
  }
}

/**
 * The Temporal side of the edge: it serves `temporal.api.workflowservice.v1.WorkflowService`
 * to GPU nodes' ordinary activity workers and forwards to the real frontend only the calls an
 * activity worker makes, each checked against the caller's session:
 *
 * - `PollActivityTaskQueue` on `node.<its id>` or `model.<m>` for a model it registered, unless
 *   the node is suspended or retired (then PERMISSION_DENIED saying how to reinstate it; a task
 *   a poll brought back after the node was barred is failed back to Temporal at once, so another
 *   node takes it);
 * - `RecordActivityTaskHeartbeat`, `RespondActivityTask{Completed,Failed,Canceled}` for task
 *   tokens this edge handed to that node; a completion must name the node itself (`nodeId`
 *   of `infer`, `verifierNodeId` of `verifyClaim`), and its timings are replaced by what the
 *   edge measured;
 * - `GetSystemInfo`, `DescribeNamespace` (its own namespace only), and `ShutdownWorker`
 *   (answered here: it would only touch sticky queues, which activity workers do not have).
 *
 * Everything else (describe, list, history, start, signal, cancel, terminate, schedules,
 * other queues, other namespaces) is refused with PERMISSION_DENIED.
 */
import * as grpc from '@grpc/grpc-js';
import protoModule from '@temporalio/proto';
import { createRequire } from 'node:module';
import type { NodeStandings } from '../activities/node-standings.ts';
import { edgeErrors, inferErrors } from '../domain/failures.ts';
import type { TaskLedger, HeldTask } from './tasks.ts';
import { SessionError, type NodeSession, type SessionStore } from './sessions.ts';
import { sessionMetadataKey } from './protocol.ts';
import { taskQueues } from '../temporal.config.ts';
import { BaseError } from '../domain/errors.ts';

const ws = protoModule.temporal.api.workflowservice.v1;
const serviceName = 'temporal.api.workflowservice.v1.WorkflowService';
// The reflection root (the static module has no service list): every method name, so each one is served, most refused.
const reflection = createRequire(import.meta.url)('@temporalio/proto/protos/json-module.js') as { lookupService(name: string): { methods: Record<string, unknown> } };
const methodNames: string[] = Object.keys(reflection.lookupService(serviceName).methods);

/** Headers that travel from a node's worker to Temporal; everything else (the session token) stays here. */
const forwardedHeaders = ['client-name', 'client-version'];

const identity = (b: Buffer) => b;
/** TASK_QUEUE_KIND_NORMAL: a node never polls a sticky queue. */
const normalQueue = 1;

export interface TemporalProxyDeps {
  upstream: grpc.Client;
  namespace: string;
  sessions: SessionStore;
  tasks: TaskLedger;
  /** Which nodes are suspended or retired (cached, see NodeStandings): they get no work. */
  standings: Pick<NodeStandings, 'barred'>;
  log?: (line: string) => void;
}

type Call = grpc.ServerUnaryCall<Buffer, Buffer>;
type Reply = grpc.sendUnaryData<Buffer>;

export class EdgeRefusal extends BaseError<'EDGE_REFUSED'> {
  override name = 'EdgeRefusal';
  constructor(
    readonly grpcCode: grpc.status,
    message: string,
  ) {
    super(message, { code: 'EDGE_REFUSED' });
  }
}

const denied = (message: string) => new EdgeRefusal(grpc.status.PERMISSION_DENIED, message);

/** The refusal a barred node's worker sees, and its operator reads in the node's log. */
export function barredRefusal(nodeId: string, why: 'suspended' | 'retired'): EdgeRefusal {
  return denied(
    why === 'suspended'
      ? `node ${nodeId} is suspended (failed spot checks) and gets no work; its operator may lift the suspension with \`gitblock-node reinstate ${nodeId}\` (POST /v1/nodes/${nodeId}/reinstate, signed with the operator key) once the cool-down has passed, then restart the node`
      : `node ${nodeId} is retired and gets no work; register a new node id to serve again`,
  );
}

/** The type of the failure the edge reports for a task it took back from a barred node. */
export const nodeBarredFailureType = edgeErrors.nodeBarred;

/** The session a call carries, or an UNAUTHENTICATED refusal. */
export function sessionOf(sessions: SessionStore, metadata: grpc.Metadata): NodeSession {
  const value = metadata.get(sessionMetadataKey)[0];
  try {
    return sessions.get(typeof value === 'string' ? value : undefined);
  } catch (err) {
    if (err instanceof SessionError) throw new EdgeRefusal(grpc.status.UNAUTHENTICATED, err.message);
    throw err;
  }
}

/** A refusal as the status a gRPC client sees; anything unexpected is INTERNAL without details. */
export function toStatus(err: unknown, log?: (line: string) => void): Partial<grpc.StatusObject> {
  if (err instanceof EdgeRefusal) return { code: err.grpcCode, details: err.message };
  log?.(`edge: internal error: ${(err as Error)?.stack ?? String(err)}`);
  return { code: grpc.status.INTERNAL, details: 'the edge hit an internal error' };
}

interface JsonPayload {
  metadata?: { [k: string]: Uint8Array } | null;
  data?: Uint8Array | null;
}

function payloadJson(payload: JsonPayload | null | undefined): unknown {
  const encoding = payload?.metadata?.['encoding'];
  if (!payload?.data || !encoding || Buffer.from(encoding).toString() !== 'json/plain') return undefined;
  try {
    return JSON.parse(Buffer.from(payload.data).toString('utf8'));
  } catch {
    return undefined;
  }
}

function jsonPayload(value: unknown): JsonPayload {
  return { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(value)) };
}

const durationMs = (d: { seconds?: unknown; nanos?: number | null } | null | undefined): number =>
  d ? Number(d.seconds ?? 0) * 1000 + Math.floor((d.nanos ?? 0) / 1e6) : 10 * 60_000;

/** The type a node's unverified claim of a final failure is rewritten to: an ordinary, failed-over failure. */
export const unverifiedFailure = inferErrors.unverified;

/** Which field of an activity's result names the node that produced it. */
const identityField: Record<string, string> = { infer: 'nodeId', verifyClaim: 'verifierNodeId' };

export function workflowServiceDefinition(): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const name of methodNames) {
    definition[name] = {
      path: `/${serviceName}/${name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    };
  }
  return definition;
}

export function workflowServiceHandlers(deps: TemporalProxyDeps): grpc.UntypedServiceImplementation {
  const forward = (name: string, call: Call, body: Buffer): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const metadata = new grpc.Metadata();
      for (const h of forwardedHeaders) for (const v of call.metadata.get(h)) metadata.add(h, v);
      const upstream = deps.upstream.makeUnaryRequest(`/${serviceName}/${name}`, identity, identity, body, metadata, { deadline: call.getDeadline() }, (err, value) => {
        call.removeListener('cancelled', onCancel);
        if (err) reject(err);
        else resolve(value!);
      });
      const onCancel = () => upstream.cancel();
      call.once('cancelled', onCancel);
    });

  /** Fails a task the node must not run, so Temporal retries it at once (on another node). */
  const giveBack = async (call: Call, taskToken: Uint8Array, message: string): Promise<void> => {
    const failed = ws.RespondActivityTaskFailedRequest.encode({
      namespace: deps.namespace,
      taskToken,
      identity: 'edge',
      failure: { message, source: 'gitblock-edge', applicationFailureInfo: { type: nodeBarredFailureType, nonRetryable: false } },
    }).finish();
    try {
      await forward('RespondActivityTaskFailed', call, Buffer.from(failed));
    } catch (err) {
      // The task then times out on its heartbeat and is retried all the same, only later.
      deps.log?.(`edge: could not give back a barred node's task: ${(err as Error).message}`);
    }
  };

  const checkNamespace = (namespace: string | null | undefined) => {
    if (namespace !== deps.namespace) throw denied(`namespace ${JSON.stringify(namespace)} is not this network's`);
  };

  const heldTask = (session: NodeSession, taskToken: Uint8Array | null | undefined): HeldTask => {
    const held = taskToken?.length ? deps.tasks.heldBy(session.nodeId, taskToken) : undefined;
    if (!held) throw denied(`node ${session.nodeId} holds no such task`);
    return held;
  };

  const handlers: Record<string, (session: NodeSession, call: Call) => Promise<Buffer>> = {
    GetSystemInfo: (_s, call) => forward('GetSystemInfo', call, call.request),

    DescribeNamespace: async (_s, call) => {
      checkNamespace(ws.DescribeNamespaceRequest.decode(call.request).namespace);
      return forward('DescribeNamespace', call, call.request);
    },

    ShutdownWorker: async () => Buffer.from(ws.ShutdownWorkerResponse.encode({}).finish()),

    PollActivityTaskQueue: async (session, call) => {
      const request = ws.PollActivityTaskQueueRequest.decode(call.request);
      checkNamespace(request.namespace);
      const queue = request.taskQueue?.name ?? '';
      const allowed = queue === taskQueues.node(session.nodeId) || [...session.models.keys()].some((m) => queue === taskQueues.model(m));
      if (!allowed) throw denied(`node ${session.nodeId} may not poll ${JSON.stringify(queue)}`);
      // A suspended node still polls the model's shared queue, where the router's filter does
      // not reach: this is where it stops getting work.
      const barred = deps.standings.barred(session.nodeId);
      if (barred) throw barredRefusal(session.nodeId, barred);
      // Rebuilt from the fields a poll needs, not passed through: a node's `taskQueueMetadata`
      // (maxTasksPerSecond 0 pauses the queue for every poller), versioning or deployment options
      // would act on the shared queue for everyone.
      const forwarded = ws.PollActivityTaskQueueRequest.create({ namespace: request.namespace, taskQueue: { name: queue, kind: normalQueue }, identity: `${session.nodeId}@edge` });
      const reply = await forward('PollActivityTaskQueue', call, Buffer.from(ws.PollActivityTaskQueueRequest.encode(forwarded).finish()));
      const task = ws.PollActivityTaskQueueResponse.decode(reply);
      // A long poll may have been waiting since before the suspension: what it brings back is
      // failed back to Temporal on the node's behalf (retryable, so the request goes on elsewhere)
      // rather than handed over.
      const barredNow = task.taskToken?.length ? deps.standings.barred(session.nodeId) : undefined;
      if (barredNow) {
        await giveBack(call, task.taskToken, `node ${session.nodeId} is ${barredNow}; the edge took the task back`);
        throw barredRefusal(session.nodeId, barredNow);
      }
      if (task.taskToken?.length) {
        const activityType = task.activityType?.name ?? '';
        const input = activityType === 'infer' ? (payloadJson(task.input?.payloads?.[0]) as { requestId?: unknown; subject?: unknown } | undefined) : undefined;
        deps.tasks.hand({
          taskToken: task.taskToken,
          nodeId: session.nodeId,
          activityType,
          requestId: typeof input?.requestId === 'string' ? input.requestId : undefined,
          subject: typeof input?.subject === 'string' ? input.subject : undefined,
          startToCloseMs: durationMs(task.startToCloseTimeout),
        });
      }
      return reply;
    },

    RecordActivityTaskHeartbeat: async (session, call) => {
      const request = ws.RecordActivityTaskHeartbeatRequest.decode(call.request);
      checkNamespace(request.namespace);
      const task = heldTask(session, request.taskToken);
      const forwarded = ws.RecordActivityTaskHeartbeatRequest.create({ namespace: request.namespace, taskToken: request.taskToken, details: request.details ?? null, identity: `${session.nodeId}@edge` });
      const reply = await forward('RecordActivityTaskHeartbeat', call, Buffer.from(ws.RecordActivityTaskHeartbeatRequest.encode(forwarded).finish()));
      if (ws.RecordActivityTaskHeartbeatResponse.decode(reply).cancelRequested) task.cancelDelivered = true;
      return reply;
    },

    RespondActivityTaskCompleted: async (session, call) => {
      const request = ws.RespondActivityTaskCompletedRequest.decode(call.request);
      checkNamespace(request.namespace);
      const task = heldTask(session, request.taskToken);
      const field = identityField[task.activityType];
      const payload = request.result?.payloads?.[0];
      if (field) {
        const result = payloadJson(payload) as Record<string, unknown> | undefined;
        if (!result || typeof result !== 'object') throw new EdgeRefusal(grpc.status.INVALID_ARGUMENT, `${task.activityType} result is not a JSON object`);
        if (result[field] !== session.nodeId) throw denied(`node ${session.nodeId} may not answer as ${String(result[field]).slice(0, 64)}`);
        // The speed that reputation and routing use is what this edge saw, not what the node says.
        if (task.activityType === 'infer') result['timings'] = deps.tasks.measure(task);
        request.result!.payloads![0] = jsonPayload(result);
      }
      const forwarded = ws.RespondActivityTaskCompletedRequest.create({ namespace: request.namespace, taskToken: request.taskToken, result: request.result ?? null, identity: `${session.nodeId}@edge` });
      const reply = await forward('RespondActivityTaskCompleted', call, Buffer.from(ws.RespondActivityTaskCompletedRequest.encode(forwarded).finish()));
      deps.tasks.release(task, true);
      return reply;
    },

    RespondActivityTaskFailed: async (session, call) => {
      const request = ws.RespondActivityTaskFailedRequest.decode(call.request);
      checkNamespace(request.namespace);
      const task = heldTask(session, request.taskToken);
      const claimed = request.failure?.applicationFailureInfo;
      // A failure that ends a request rather than failing it over is believed only when the edge
      // saw its cause: else a node could fail every request it is sent, as "cancelled".
      const verified = claimed?.type === inferErrors.cancelled ? task.cancelDelivered : claimed?.type === inferErrors.superseded ? task.supersededSeen : true;
      if (claimed && !verified) {
        request.failure!.message = `unverified ${claimed.type} from node ${session.nodeId}: ${request.failure!.message ?? ''}`.slice(0, 1024);
        claimed.type = unverifiedFailure;
        claimed.nonRetryable = false;
      }
      const forwarded = ws.RespondActivityTaskFailedRequest.create({
        namespace: request.namespace,
        taskToken: request.taskToken,
        failure: request.failure ?? null,
        lastHeartbeatDetails: request.lastHeartbeatDetails ?? null,
        identity: `${session.nodeId}@edge`,
      });
      const reply = await forward('RespondActivityTaskFailed', call, Buffer.from(ws.RespondActivityTaskFailedRequest.encode(forwarded).finish()));
      deps.tasks.release(task, false);
      return reply;
    },

    RespondActivityTaskCanceled: async (session, call) => {
      const request = ws.RespondActivityTaskCanceledRequest.decode(call.request);
      checkNamespace(request.namespace);
      const task = heldTask(session, request.taskToken);
      const forwarded = ws.RespondActivityTaskCanceledRequest.create({ namespace: request.namespace, taskToken: request.taskToken, details: request.details ?? null, identity: `${session.nodeId}@edge` });
      const reply = await forward('RespondActivityTaskCanceled', call, Buffer.from(ws.RespondActivityTaskCanceledRequest.encode(forwarded).finish()));
      deps.tasks.release(task, false);
      return reply;
    },
  };

  const implementation: grpc.UntypedServiceImplementation = {};
  for (const name of methodNames) {
    implementation[name] = (call: Call, callback: Reply) => {
      const handler = handlers[name];
      // gRPC's callback API: the outcome, a refusal included, goes to `callback`, not to a caller.
      void (async () => {
        const session = sessionOf(deps.sessions, call.metadata);
        if (!handler) throw denied(`${name} is not a call a node may make`);
        return handler(session, call);
      })().then(
        (value) => callback(null, value),
        (err: unknown) => {
          // An upstream error (a stale task token, a poll deadline) reaches the worker as Temporal said it.
          if (err && typeof err === 'object' && 'code' in err && typeof (err as grpc.ServiceError).code === 'number' && !(err instanceof EdgeRefusal)) {
            const e = err as grpc.ServiceError;
            callback({ code: e.code, details: e.details, metadata: e.metadata });
            return;
          }
          callback(toStatus(err, deps.log));
        },
      );
    };
  }
  return implementation;
}

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

function forward(deps: TemporalProxyDeps, name: string, call: Call, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
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
}

/** Fails a task the node must not run, so Temporal retries it at once (on another node). */
async function giveBack(deps: TemporalProxyDeps, call: Call, taskToken: Uint8Array, message: string): Promise<void> {
  const failed = ws.RespondActivityTaskFailedRequest.encode({
    namespace: deps.namespace,
    taskToken,
    identity: 'edge',
    failure: { message, source: 'gitblock-edge', applicationFailureInfo: { type: nodeBarredFailureType, nonRetryable: false } },
  }).finish();
  try {
    await forward(deps, 'RespondActivityTaskFailed', call, Buffer.from(failed));
  } catch (err) {
    // The task then times out on its heartbeat and is retried all the same, only later.
    deps.log?.(`edge: could not give back a barred node's task: ${(err as Error).message}`);
  }
}

function checkNamespace(deps: TemporalProxyDeps, namespace: string | null | undefined): void {
  if (namespace !== deps.namespace) throw denied(`namespace ${JSON.stringify(namespace)} is not this network's`);
}

function heldTask(deps: TemporalProxyDeps, session: NodeSession, taskToken: Uint8Array | null | undefined): HeldTask {
  const held = taskToken?.length ? deps.tasks.heldBy(session.nodeId, taskToken) : undefined;
  if (!held) throw denied(`node ${session.nodeId} holds no such task`);
  return held;
}

/** A request type's codec, as protobufjs generates it: decoded `D`, encoded from the fields `E`. */
interface Codec<D, E> {
  decode(body: Uint8Array): D;
  encode(message: E): { finish(): Uint8Array };
}

/**
 * A call about one task the node holds: decoded, its namespace and task checked, and forwarded
 * rebuilt from the fields `rebuild` keeps (never passed through), as the node at this edge.
 */
async function forwardTaskCall<D extends { namespace?: string | null; taskToken?: Uint8Array | null }, E extends { identity?: string | null }>(
  deps: TemporalProxyDeps,
  session: NodeSession,
  call: Call,
  name: string,
  codec: Codec<D, E>,
  rebuild: (request: D, task: HeldTask) => E,
): Promise<{ reply: Buffer; task: HeldTask }> {
  const request = codec.decode(call.request);
  checkNamespace(deps, request.namespace);
  const task = heldTask(deps, session, request.taskToken);
  const forwarded = { ...rebuild(request, task), identity: `${session.nodeId}@edge` };
  const reply = await forward(deps, name, call, Buffer.from(codec.encode(forwarded).finish()));
  return { reply, task };
}

/** Records a task a poll brought back as handed to the node (what it may answer for). */
function recordHanded(deps: TemporalProxyDeps, session: NodeSession, task: ReturnType<typeof ws.PollActivityTaskQueueResponse.decode>): void {
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

async function pollActivityTaskQueue(deps: TemporalProxyDeps, session: NodeSession, call: Call): Promise<Buffer> {
  const request = ws.PollActivityTaskQueueRequest.decode(call.request);
  checkNamespace(deps, request.namespace);
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
  const reply = await forward(deps, 'PollActivityTaskQueue', call, Buffer.from(ws.PollActivityTaskQueueRequest.encode(forwarded).finish()));
  const task = ws.PollActivityTaskQueueResponse.decode(reply);
  // A long poll may have been waiting since before the suspension: what it brings back is
  // failed back to Temporal on the node's behalf (retryable, so the request goes on elsewhere)
  // rather than handed over.
  const barredNow = task.taskToken?.length ? deps.standings.barred(session.nodeId) : undefined;
  if (barredNow) {
    await giveBack(deps, call, task.taskToken, `node ${session.nodeId} is ${barredNow}; the edge took the task back`);
    throw barredRefusal(session.nodeId, barredNow);
  }
  if (task.taskToken?.length) recordHanded(deps, session, task);
  return reply;
}

/** A completion must name the node itself, and carries the timings the edge measured. */
async function respondCompleted(deps: TemporalProxyDeps, session: NodeSession, call: Call): Promise<Buffer> {
  const { reply, task } = await forwardTaskCall(deps, session, call, 'RespondActivityTaskCompleted', ws.RespondActivityTaskCompletedRequest, (request, task) => {
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
    return { namespace: request.namespace, taskToken: request.taskToken, result: request.result ?? null };
  });
  deps.tasks.release(task, true);
  return reply;
}

/**
 * A failure that ends a request rather than failing it over is believed only when the edge
 * saw its cause: else a node could fail every request it is sent, as "cancelled".
 */
async function respondFailed(deps: TemporalProxyDeps, session: NodeSession, call: Call): Promise<Buffer> {
  const { reply, task } = await forwardTaskCall(deps, session, call, 'RespondActivityTaskFailed', ws.RespondActivityTaskFailedRequest, (request, task) => {
    const claimed = request.failure?.applicationFailureInfo;
    const verified = claimed?.type === inferErrors.cancelled ? task.cancelDelivered : claimed?.type === inferErrors.superseded ? task.supersededSeen : true;
    if (claimed && !verified) {
      request.failure!.message = `unverified ${claimed.type} from node ${session.nodeId}: ${request.failure!.message ?? ''}`.slice(0, 1024);
      claimed.type = unverifiedFailure;
      claimed.nonRetryable = false;
    }
    return { namespace: request.namespace, taskToken: request.taskToken, failure: request.failure ?? null, lastHeartbeatDetails: request.lastHeartbeatDetails ?? null };
  });
  deps.tasks.release(task, false);
  return reply;
}

type Handler = (session: NodeSession, call: Call) => Promise<Buffer>;

/** The calls a node may make, each checked against its session; every other method is refused. */
function handlersOf(deps: TemporalProxyDeps): Record<string, Handler> {
  return {
    GetSystemInfo: (_s, call) => forward(deps, 'GetSystemInfo', call, call.request),
    DescribeNamespace: async (_s, call) => {
      checkNamespace(deps, ws.DescribeNamespaceRequest.decode(call.request).namespace);
      return forward(deps, 'DescribeNamespace', call, call.request);
    },
    ShutdownWorker: async () => Buffer.from(ws.ShutdownWorkerResponse.encode({}).finish()),
    PollActivityTaskQueue: (session, call) => pollActivityTaskQueue(deps, session, call),
    RecordActivityTaskHeartbeat: async (session, call) => {
      const { reply, task } = await forwardTaskCall(deps, session, call, 'RecordActivityTaskHeartbeat', ws.RecordActivityTaskHeartbeatRequest, (request) => ({
        namespace: request.namespace,
        taskToken: request.taskToken,
        details: request.details ?? null,
      }));
      if (ws.RecordActivityTaskHeartbeatResponse.decode(reply).cancelRequested) task.cancelDelivered = true;
      return reply;
    },
    RespondActivityTaskCompleted: (session, call) => respondCompleted(deps, session, call),
    RespondActivityTaskFailed: (session, call) => respondFailed(deps, session, call),
    RespondActivityTaskCanceled: async (session, call) => {
      const { reply, task } = await forwardTaskCall(deps, session, call, 'RespondActivityTaskCanceled', ws.RespondActivityTaskCanceledRequest, (request) => ({
        namespace: request.namespace,
        taskToken: request.taskToken,
        details: request.details ?? null,
      }));
      deps.tasks.release(task, false);
      return reply;
    },
  };
}

export function workflowServiceHandlers(deps: TemporalProxyDeps): grpc.UntypedServiceImplementation {
  const handlers = handlersOf(deps);
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

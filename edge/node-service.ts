/**
 * The edge's own service for nodes (edge/protocol.ts): registration, sessions, and on a node's
 * behalf everything it used to do on NATS itself, narrowed to what it may do:
 *
 * - publish chunks, read what was delivered, and learn of a cancel only for a request whose
 *   newest task it holds now; the edge stamps its id on each chunk and keeps the fencing;
 * - write its own heartbeat only, checked against its registration and capped: slots by its
 *   session, in-flight by the tasks the edge knows it holds, speed by what the edge measured.
 */
import * as grpc from '@grpc/grpc-js';
import { JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { readDelivered, wrongLastSequence } from '../activities/token-stream.ts';
import { heartbeatKey, heartbeatSchema, loadedModelSchema, type Heartbeat } from '../domain/heartbeat.ts';
import { cancelSubject, type TokenChunk } from '../domain/inference.ts';
import { NodeIdTakenError, type Registered } from '../gateway/registration/register.ts';
import { RegistrationError } from '../gateway/registration/verify.ts';
import { edgeErrors, type EdgeInfo, type PublishReply, type SessionReply } from './protocol.ts';
import { SessionError, type NodeSession, type SessionStore } from './sessions.ts';
import type { HeldTask, TaskLedger } from './tasks.ts';
import { EdgeRefusal, sessionOf, toStatus } from './temporal-proxy.ts';
import { toApiError } from '../gateway/errors.ts';

export interface NodeServiceDeps {
  info: EdgeInfo;
  sessions: SessionStore;
  tasks: TaskLedger;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kv: KV;
  register(body: unknown): Promise<Registered>;
  log?: (line: string) => void;
}

/** Limits on one chunk: a generation flushes at least every frame, so real chunks are far smaller. */
export const chunkLimits = { tokens: 4096, textChars: 65_536 } as const;

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const taskRefSchema = z.strictObject({ requestId: z.string().min(1).max(128) });
const publishSchema = z.strictObject({
  requestId: z.string().min(1).max(128),
  seq: count,
  tokens: z.array(z.number().int().nonnegative().max(2 ** 31)).max(chunkLimits.tokens),
  text: z.string().max(chunkLimits.textChars),
  finish: z
    .strictObject({
      reason: z.enum(['stop', 'length']),
      usage: z.strictObject({ promptTokens: count, completionTokens: count, totalTokens: count }),
    })
    .optional(),
  expectLastSubjectSeq: count,
});
const reportSchema = heartbeatSchema
  .pick({ version: true, status: true, gpu: true, maxParallel: true, freeMemoryBytes: true })
  .extend({ models: z.array(loadedModelSchema).min(1).max(32) })
  .strict();

const invalid = (what: string, error: z.ZodError) => {
  const issue = error.issues[0]!;
  return new EdgeRefusal(grpc.status.INVALID_ARGUMENT, `${edgeErrors.invalid}: ${what}: ${issue.path.join('.') || '(message)'}: ${issue.message}`);
};

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(what, parsed.error);
  return parsed.data;
}

/** Registration and session errors as gRPC statuses a node's operator can act on. */
function refusalOf(err: unknown): unknown {
  if (err instanceof NodeIdTakenError) return new EdgeRefusal(grpc.status.ALREADY_EXISTS, err.message);
  if (err instanceof RegistrationError) {
    // The gateway's one map says what the refusal is; the edge says it in gRPC's words.
    const status = toApiError(err).status;
    const code = status === 401 ? grpc.status.UNAUTHENTICATED : status === 409 ? grpc.status.ALREADY_EXISTS : grpc.status.INVALID_ARGUMENT;
    return new EdgeRefusal(code, `${err.code}: ${err.message}`);
  }
  if (err instanceof SessionError) {
    const code = err.code === 'SESSION_INVALID' ? grpc.status.INVALID_ARGUMENT : err.code === 'SESSION_NOT_REGISTERED' ? grpc.status.PERMISSION_DENIED : grpc.status.UNAUTHENTICATED;
    return new EdgeRefusal(code, `${err.code}: ${err.message}`);
  }
  return err;
}

/** The request's newest task, held by this node, or a refusal saying why not. */
function heldRequest(deps: NodeServiceDeps, session: NodeSession, requestId: string): HeldTask & { subject: string } {
  const held = deps.tasks.request(session.nodeId, requestId);
  if (held === 'superseded') {
    for (const t of deps.tasks.heldOf(session.nodeId, requestId)) t.supersededSeen = true;
    throw new EdgeRefusal(grpc.status.FAILED_PRECONDITION, `${edgeErrors.superseded}: another attempt has taken over request ${requestId}`);
  }
  if (held === 'not-held' || !held.subject) throw new EdgeRefusal(grpc.status.PERMISSION_DENIED, `${edgeErrors.notHeld}: node ${session.nodeId} holds no task of request ${requestId.slice(0, 128)}`);
  return held as HeldTask & { subject: string };
}

/** A unary handler: `fn`'s value or refusal goes to gRPC's callback; `authenticated` calls carry a session. */
function unary<Res>(deps: NodeServiceDeps, authenticated: boolean, fn: (request: unknown, session: NodeSession | undefined) => Promise<Res>) {
  return (call: grpc.ServerUnaryCall<unknown, Res>, callback: grpc.sendUnaryData<Res>) => {
    // gRPC's callback API: the outcome, a refusal included, goes to `callback`, not to a caller.
    void (async () => fn(call.request, authenticated ? sessionOf(deps.sessions, call.metadata) : undefined))().then(
      (value) => callback(null, value),
      (err: unknown) => callback(toStatus(refusalOf(err), deps.log)),
    );
  };
}

/** Writes the node's heartbeat, checked against its registration and capped by what the edge knows. */
async function heartbeat(deps: NodeServiceDeps, request: unknown, session: NodeSession): Promise<Record<string, never>> {
  const report = parse(reportSchema, request, 'heartbeat');
  for (const m of report.models) {
    const registered = session.models.get(m.id);
    if (registered === undefined) throw new EdgeRefusal(grpc.status.PERMISSION_DENIED, `node ${session.nodeId} did not register model ${m.id}`);
    if (registered && registered !== m.hash) throw new EdgeRefusal(grpc.status.PERMISSION_DENIED, `node ${session.nodeId} registered another file for ${m.id}`);
  }
  const maxParallel = Math.min(report.maxParallel, session.slots);
  const inFlight = deps.tasks.inFlight(session.nodeId);
  const beat: Heartbeat = {
    nodeId: session.nodeId,
    operator: session.operator,
    version: report.version,
    status: report.status,
    gpu: report.gpu,
    models: report.models.map((m) => ({ ...m, slots: Math.min(m.slots, maxParallel) })),
    maxParallel,
    inFlight,
    freeSlots: Math.max(0, maxParallel - inFlight),
    recentTokensPerSecond: deps.tasks.tokensPerSecond(session.nodeId),
    freeMemoryBytes: report.freeMemoryBytes,
    at: Date.now(),
  };
  await deps.kv.put(heartbeatKey(session.nodeId), JSON.stringify(beat));
  return {};
}

/** Publishes one chunk of a task the node holds, fenced by the stream's last sequence. */
async function publish(deps: NodeServiceDeps, request: unknown, session: NodeSession): Promise<PublishReply> {
  const chunk = parse(publishSchema, request, 'chunk');
  const task = heldRequest(deps, session, chunk.requestId);
  const message: TokenChunk = {
    seq: chunk.seq,
    nodeId: session.nodeId,
    tokens: chunk.tokens,
    text: chunk.text,
    ...(chunk.finish ? { finish: chunk.finish } : {}),
  };
  try {
    const ack = await deps.js.publish(task.subject, JSON.stringify(message), { expect: { lastSubjectSequence: chunk.expectLastSubjectSeq } });
    deps.tasks.recordChunk(task, chunk.tokens.length);
    return { streamSeq: ack.seq };
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === wrongLastSequence) {
      task.supersededSeen = true;
      throw new EdgeRefusal(grpc.status.FAILED_PRECONDITION, `${edgeErrors.superseded}: another attempt has taken over ${task.subject}`);
    }
    throw new EdgeRefusal(grpc.status.UNAVAILABLE, `token stream unavailable: ${(err as Error).message}`);
  }
}

/** Chunks in order on one stream; each answered with its sequence or its refusal, in line. */
function publishStream(deps: NodeServiceDeps, call: grpc.ServerDuplexStream<unknown, PublishReply>): void {
  let chain = Promise.resolve();
  call.on('data', (request: unknown) => {
    chain = chain.then(async () => {
      try {
        call.write(await publish(deps, request, sessionOf(deps.sessions, call.metadata)));
      } catch (err) {
        const status = toStatus(refusalOf(err), deps.log);
        call.write({ streamSeq: 0, error: { code: status.code ?? grpc.status.INTERNAL, details: status.details ?? '' } });
      }
    });
  });
  call.on('end', () => void chain.then(() => call.end()));
  call.on('error', () => {});
}

/** Tells the node when its task's request is cancelled; ends with the task. */
function watchCancel(deps: NodeServiceDeps, call: grpc.ServerWritableStream<unknown, unknown>): void {
  let unsubscribe = () => {};
  try {
    const session = sessionOf(deps.sessions, call.metadata);
    const { requestId } = parse(taskRefSchema, call.request, 'task');
    const task = heldRequest(deps, session, requestId);
    const sub = deps.nc.subscribe(cancelSubject(requestId), {
      max: 1,
      callback: () => {
        task.cancelDelivered = true;
        call.write({ cancelled: true });
        call.end();
      },
    });
    // A watch never outlives the task it is for.
    const expiry = setTimeout(() => call.end(), deps.tasks.msLeft(task));
    expiry.unref();
    unsubscribe = () => {
      clearTimeout(expiry);
      sub.unsubscribe();
    };
    call.once('cancelled', unsubscribe);
    call.once('finish', unsubscribe);
  } catch (err) {
    unsubscribe();
    // 'error' sends the status to the caller; destroy() would leave the stream open, unanswered.
    call.emit('error', toStatus(refusalOf(err), deps.log));
  }
}

export function nodeServiceHandlers(deps: NodeServiceDeps): grpc.UntypedServiceImplementation {
  return {
    info: unary(deps, false, async () => deps.info),
    register: unary(deps, false, (body) => deps.register(body)),
    openSession: unary(deps, false, async (body): Promise<SessionReply> => {
      const { token, session } = await deps.sessions.open(body);
      return { token, expiresAt: Math.floor(session.expiresAt / 1000) };
    }),
    heartbeat: unary(deps, true, (request, session) => heartbeat(deps, request, session!)),
    offline: unary(deps, true, async (_request, session) => {
      await deps.kv.delete(heartbeatKey(session!.nodeId));
      return {};
    }),
    readDelivered: unary(deps, true, async (request, session) => {
      const { requestId } = parse(taskRefSchema, request, 'task');
      return readDelivered(deps.jsm, heldRequest(deps, session!, requestId).subject);
    }),
    publishChunk: unary(deps, true, (request, session) => publish(deps, request, session!)),
    publishChunks: (call: grpc.ServerDuplexStream<unknown, PublishReply>) => publishStream(deps, call),
    watchCancel: (call: grpc.ServerWritableStream<unknown, unknown>) => watchCancel(deps, call),
  };
}

/**
 * Attacks on the node edge. The attacker is a node of another operator, registered and holding
 * a valid session, that tries through the one endpoint nodes reach everything a hostile peer
 * could: Temporal calls a worker never makes, other nodes' queues and task tokens, forged
 * sessions, other requests' token streams, forged heartbeats and answers in another node's
 * name. An honest victim node (a real `gitblock-node` process) serves meanwhile. Every attempt
 * must be refused with the stated gRPC status and leave the victim's state as it was.
 *
 * The test's own Temporal, NATS and MongoDB clients are trusted: they only set up and observe.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import proto from '@temporalio/proto';
import { NativeConnection, Worker } from '@temporalio/worker';
import { getAddress, type Address } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsConnectionOptions } from '../../connections/nats.ts';
import { nodesKv } from '../../connections/streams.ts';
import { edgeSessionTypedData, type EdgeSessionBody, type EdgeSessionFields } from '../../domain/edge-session.ts';
import { heartbeatSchema } from '../../domain/heartbeat.ts';
import { tokenStreamName, tokenSubject, type InferInput, type InferResult, type TokenChunk } from '../../domain/inference.ts';
import { edgeServiceName, nodeEdgeService, sessionMetadataKey, type EdgeInfo, type NodeReport } from '../../edge/protocol.ts';
import type { HeldTask } from '../../edge/tasks.ts';
import { workflowServiceDefinition } from '../../edge/temporal-proxy.ts';
import { settlementConfig, taskQueues, workflowIds } from '../../temporal.config.ts';
import { EdgeClient } from '../../workers/node/edge-client.ts';
import { signRegistration } from '../../workers/node/identity.ts';
import { inferenceWorkflow, type InferenceOutcome } from '../../workflows/inference.ts';
import { stateQuery, type NodeActorView } from '../../workflows/node-actor.ts';
import { stack, unique } from '../helpers.ts';
import type { NodeProcess } from '../node-process.ts';
import { startNetwork, type Network } from './harness.ts';
import { store } from '../../store/index.ts';

const ws = proto.temporal.api.workflowservice.v1;
const model = 'gitblock-tiny';

let net: Network;
let victim: NodeProcess;
let victimHash: string;
let victimOperator: Address;
let namespace: string;
let controlQueue: string;
/** A finished request the victim served: its prompt is what describe and history would leak. */
let victimRequest: InferInput;
let actorBefore: NodeActorView;
let jsm: JetStreamManager;

const attacker = privateKeyToAccount(generatePrivateKey());
const attackerId = unique('attacker');
let edge: EdgeClient;
let info: EdgeInfo;
/** The attacker's valid session token, reused by every attack. */
let session: string;
/** A plain gRPC client on the edge's address: the attacker speaks the wire protocol itself. */
let raw: grpc.Client;

beforeAll(async () => {
  net = await startNetwork({ requestsPerMinute: 1000, tokensPerDay: 10_000_000 });
  namespace = stack().temporalNamespace;
  controlQueue = net.control.worker.options.taskQueue;
  jsm = await jetstreamManager(net.nc);
  // Slowed, so a long answer is still streaming while it is attacked.
  victim = await net.startNode('victim', ['--test-faults', 'slow:15']);
  const registration = await registrationOf(victim.nodeId);
  victimHash = registration!.modelHashes[model]!;
  victimOperator = getAddress(registration!.operator);

  edge = new EdgeClient(net.edge.address);
  info = await edge.info();
  const body = await signRegistration(attacker, { nodeId: attackerId, models: [model], modelHashes: [victimHash], gpu: 'cpu', version: '0.1.0' }, info.chainId);
  expect(await edge.register(body)).toMatchObject({ nodeId: attackerId, status: 'registered' });
  session = (await edge.openSession(attacker, info, attackerId, 2)).token;
  raw = new grpc.Client(net.edge.address, grpc.credentials.createInsecure());

  victimRequest = request(8);
  await run(victimRequest, [victim.nodeId]).then((h) => h.result());
  actorBefore = await actorView();
}, 180_000);

afterAll(async () => {
  raw?.close();
  edge?.close();
  await net?.stop();
});

function request(maxTokens: number, content = 'Tell me a secret about the sea.'): InferInput {
  const requestId = unique('r');
  return { requestId, modelId: model, messages: [{ role: 'user', content }], sampling: { temperature: 0, maxTokens }, subject: tokenSubject(requestId) };
}

function run(input: InferInput, candidates: string[]) {
  return net.temporal.workflow.start(inferenceWorkflow, { taskQueue: controlQueue, workflowId: workflowIds.request(input.requestId), args: [input, candidates] });
}

function registrationOf(nodeId: string) {
  return store(net.mongo.db).registrations.findOne({ _id: nodeId });
}

function actorView(): Promise<NodeActorView> {
  return net.temporal.workflow.getHandle(workflowIds.node(victim.nodeId)).query(stateQuery);
}

/** Every chunk on a subject, in stream order. */
async function chunks(subject: string): Promise<TokenChunk[]> {
  const out: TokenChunk[] = [];
  for (let seq = 1; ; ) {
    const m = await jsm.direct.getMessage(tokenStreamName, { seq, next_by_subj: subject });
    if (!m) return out;
    out.push(m.json<TokenChunk>());
    seq = m.seq + 1;
  }
}

async function waitForChunks(subject: string, n: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await chunks(subject)).length < n) {
    if (Date.now() > deadline) throw new Error(`fewer than ${n} chunks on ${subject}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---- The attacker's wire calls: each resolves to the status the edge answered, never throws.

const denied = { code: grpc.status.PERMISSION_DENIED };

interface Answer {
  code: grpc.status;
  details: string;
  value?: unknown;
}

/** `null`: no session metadata at all. */
type Token = string | null;

function metadataFor(token: Token): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (token !== null) metadata.set(sessionMetadataKey, token);
  return metadata;
}

function unary<Req, Res>(method: grpc.MethodDefinition<Req, Res>, body: Req, token: Token = session, timeoutMs = 10_000): Promise<Answer> {
  return new Promise((resolve) => {
    raw.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, body, metadataFor(token), { deadline: Date.now() + timeoutMs }, (err, value) =>
      resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '', value }),
    );
  });
}

const temporalMethods = workflowServiceDefinition() as Record<string, grpc.MethodDefinition<Buffer, Buffer>>;

/** A WorkflowService call as a Temporal client would encode it. */
function temporal(method: string, encoded: Uint8Array, token: Token = session, timeoutMs?: number): Promise<Answer> {
  return unary(temporalMethods[method]!, Buffer.from(encoded), token, timeoutMs);
}

/** WatchCancel is a server stream: its first event or final status (DEADLINE_EXCEEDED if neither comes soon). */
function watchCancel(requestId: string, token: Token = session): Promise<Answer> {
  const method = nodeEdgeService.watchCancel;
  const stream = raw.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, { requestId }, metadataFor(token), { deadline: Date.now() + 1_500 });
  return new Promise((resolve) => {
    stream.on('data', (value: unknown) => resolve({ code: grpc.status.OK, details: 'event', value }));
    stream.on('error', (err: grpc.ServiceError) => resolve({ code: err.code, details: err.details }));
    stream.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }));
  });
}

const json = (value: unknown) => ({ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(value)) });

/** A session body as the attacker signs it, with any field changed. */
function sessionBody(fields: Partial<EdgeSessionFields> = {}): Promise<EdgeSessionBody> {
  const session: EdgeSessionFields = {
    nodeId: attackerId,
    operator: attacker.address,
    audience: info.audience,
    slots: 2,
    expiry: Math.floor(Date.now() / 1000) + 300,
    nonce: `0x${randomBytes(32).toString('hex')}`,
    ...fields,
  };
  return attacker.signTypedData(edgeSessionTypedData(info.chainId, session)).then((signature) => ({ session, signature }));
}

const report = (overrides: Partial<NodeReport> = {}): NodeReport => ({
  version: '0.1.0',
  status: 'serving',
  gpu: { backend: 'cuda', devices: ['H100'] },
  models: [{ id: model, hash: victimHash, contextSize: 2048, slots: 1000 }],
  maxParallel: 1000,
  freeMemoryBytes: 80 * 2 ** 30,
  ...overrides,
});

/** A well-formed `infer` result in the victim's name, with an answer it never gave. */
const forgedAnswer = (input: Pick<InferInput, 'requestId' | 'modelId'>): InferResult => ({
  requestId: input.requestId,
  nodeId: victim.nodeId,
  modelId: input.modelId,
  modelHash: victimHash,
  text: 'FORGED',
  tokens: [1, 2, 3],
  finishReason: 'stop',
  usage: { promptTokens: 1, completionTokens: 3, totalTokens: 4 },
  continuedFromTokens: 0,
  timings: { timeToFirstTokenMs: 1, tokensPerSecond: 1e6, totalMs: 1 },
});

/** After any attack: the victim's actor runs, in the state and with the record it had. */
async function expectVictimUntouched(): Promise<void> {
  expect((await net.temporal.workflow.getHandle(workflowIds.node(victim.nodeId)).describe()).status.name).toBe('RUNNING');
  expect(comparable(await actorView())).toEqual(comparable(actorBefore));
}

// ---- The attacks.

describe('Temporal calls a worker never makes, with a valid session', () => {
  const execution = () => ({ workflowId: workflowIds.node(victim.nodeId) });
  const signal = (signalName: string, value: unknown) => () =>
    ws.SignalWorkflowExecutionRequest.encode({ namespace, workflowExecution: execution(), signalName, input: { payloads: [json(value)] }, identity: 'attacker', requestId: randomUUID() }).finish();

  const refused: [string, string, () => Uint8Array][] = [
    ['read the prompt of a victim request (describe)', 'DescribeWorkflowExecution', () => ws.DescribeWorkflowExecutionRequest.encode({ namespace, execution: { workflowId: workflowIds.request(victimRequest.requestId) } }).finish()],
    ['read the prompt of a victim request (history)', 'GetWorkflowExecutionHistory', () => ws.GetWorkflowExecutionHistoryRequest.encode({ namespace, execution: { workflowId: workflowIds.request(victimRequest.requestId) } }).finish()],
    ['list every request', 'ListWorkflowExecutions', () => ws.ListWorkflowExecutionsRequest.encode({ namespace, pageSize: 100 }).finish()],
    [
      'start a request with no key and no quota',
      'StartWorkflowExecution',
      () =>
        ws.StartWorkflowExecutionRequest.encode({
          namespace,
          workflowId: workflowIds.request(`${attackerId}-free`),
          workflowType: { name: 'requestWorkflow' },
          taskQueue: { name: controlQueue },
          input: { payloads: [json({ ...request(64), promptTokensEstimate: 8 })] },
          requestId: randomUUID(),
        }).finish(),
    ],
    ['reinstate the victim (operatorAction)', 'SignalWorkflowExecution', signal('operatorAction', { action: 'reinstate', at: Date.now() })],
    ['fail the victim a spot check (verificationVerdict)', 'SignalWorkflowExecution', signal('verificationVerdict', { requestId: 'forged', passed: false, at: Date.now() })],
    ['fail the victim a request (requestOutcome)', 'SignalWorkflowExecution', signal('requestOutcome', { requestId: 'forged', ok: false, at: Date.now() })],
    [
      'signal-with-start the victim actor',
      'SignalWithStartWorkflowExecution',
      () =>
        ws.SignalWithStartWorkflowExecutionRequest.encode({
          namespace,
          workflowId: workflowIds.node(victim.nodeId),
          workflowType: { name: 'nodeActorWorkflow' },
          taskQueue: { name: controlQueue },
          signalName: 'operatorAction',
          signalInput: { payloads: [json({ action: 'retire', at: Date.now() })] },
          requestId: randomUUID(),
        }).finish(),
    ],
    ['cancel the victim actor', 'RequestCancelWorkflowExecution', () => ws.RequestCancelWorkflowExecutionRequest.encode({ namespace, workflowExecution: execution(), requestId: randomUUID() }).finish()],
    ['terminate the victim actor', 'TerminateWorkflowExecution', () => ws.TerminateWorkflowExecutionRequest.encode({ namespace, workflowExecution: execution(), reason: 'attack' }).finish()],
    ['reset the victim actor', 'ResetWorkflowExecution', () => ws.ResetWorkflowExecutionRequest.encode(ws.ResetWorkflowExecutionRequest.fromObject({ namespace, workflowExecution: execution(), workflowTaskFinishEventId: 3, requestId: randomUUID() })).finish()],
    ['delete the victim actor', 'DeleteWorkflowExecution', () => ws.DeleteWorkflowExecutionRequest.encode({ namespace, workflowExecution: execution() }).finish()],
    ['query the victim actor', 'QueryWorkflow', () => ws.QueryWorkflowRequest.encode({ namespace, execution: execution(), query: { queryType: 'state' } }).finish()],
    ['update the victim actor', 'UpdateWorkflowExecution', () => ws.UpdateWorkflowExecutionRequest.encode({ namespace, workflowExecution: execution(), request: { meta: { updateId: randomUUID() }, input: { name: 'anything' } } }).finish()],
    [
      'create a schedule',
      'CreateSchedule',
      () =>
        ws.CreateScheduleRequest.encode(
          ws.CreateScheduleRequest.fromObject({
            namespace,
            scheduleId: `${attackerId}-schedule`,
            schedule: { spec: { interval: [{ interval: { seconds: 1 } }] }, action: { startWorkflow: { workflowId: 'x', workflowType: { name: 'requestWorkflow' }, taskQueue: { name: controlQueue } } } },
            requestId: randomUUID(),
          }),
        ).finish(),
    ],
    ['pause the settlement schedule', 'PatchSchedule', () => ws.PatchScheduleRequest.encode({ namespace, scheduleId: settlementConfig.scheduleId, patch: { pause: 'attack' }, requestId: randomUUID() }).finish()],
    ['delete the settlement schedule', 'DeleteSchedule', () => ws.DeleteScheduleRequest.encode({ namespace, scheduleId: settlementConfig.scheduleId }).finish()],
    ['list schedules', 'ListSchedules', () => ws.ListSchedulesRequest.encode({ namespace, maximumPageSize: 10 }).finish()],
    ['take workflow tasks of the control queue', 'PollWorkflowTaskQueue', () => ws.PollWorkflowTaskQueueRequest.encode({ namespace, taskQueue: { name: controlQueue } }).finish()],
    [
      'complete an activity by id',
      'RespondActivityTaskCompletedById',
      () => ws.RespondActivityTaskCompletedByIdRequest.encode({ namespace, workflowId: workflowIds.request(victimRequest.requestId), activityId: '1', result: { payloads: [json({})] } }).finish(),
    ],
    ['heartbeat an activity by id', 'RecordActivityTaskHeartbeatById', () => ws.RecordActivityTaskHeartbeatByIdRequest.encode({ namespace, workflowId: workflowIds.request(victimRequest.requestId), activityId: '1' }).finish()],
    ['see who polls a queue', 'DescribeTaskQueue', () => ws.DescribeTaskQueueRequest.encode({ namespace, taskQueue: { name: taskQueues.model(model) } }).finish()],
    ['describe another namespace', 'DescribeNamespace', () => ws.DescribeNamespaceRequest.encode({ namespace: 'temporal-system' }).finish()],
  ];

  it.each(refused)('%s: %s → PERMISSION_DENIED', async (_what, method, encode) => {
    expect(await temporal(method, encode())).toMatchObject(denied);
  });

  it('touches nothing: the victim actor runs as it was, nothing was started or scheduled', async () => {
    await expectVictimUntouched();
    await expect(net.temporal.workflow.getHandle(workflowIds.request(`${attackerId}-free`)).describe()).rejects.toThrow(/not found/i);
    await expect(net.temporal.schedule.getHandle(`${attackerId}-schedule`).describe()).rejects.toThrow(/not found/i);
  });

  it('serves no other Temporal service at all (not forwarded)', async () => {
    const operatorService = { ...temporalMethods['DescribeNamespace']!, path: '/temporal.api.operatorservice.v1.OperatorService/DeleteNamespace' };
    expect(await unary(operatorService, Buffer.alloc(0))).toMatchObject({ code: grpc.status.UNIMPLEMENTED });
  });

  it.each([
    ['no session', null],
    ['a garbage token', 'garbage'],
  ])('with %s, every call is UNAUTHENTICATED (WatchCancel: see below)', async (_what, token) => {
    const answers: Record<string, grpc.status> = {};
    for (const method of Object.keys(temporalMethods)) answers[method] = (await temporal(method, new Uint8Array(0), token)).code;
    for (const method of ['heartbeat', 'offline', 'readDelivered', 'publishChunk'] as const) {
      answers[`${edgeServiceName}/${method}`] = (await unary(nodeEdgeService[method] as grpc.MethodDefinition<unknown, unknown>, { requestId: victimRequest.requestId }, token)).code;
    }
    expect(Object.entries(answers).filter(([, code]) => code !== grpc.status.UNAUTHENTICATED)).toEqual([]);
  });
});

describe('queues and task tokens that are not the attacker\'s', () => {
  it.each([
    ['the victim\'s own queue', namespaceOf, () => taskQueues.node(victim.nodeId)],
    ['a partition of the victim\'s queue', namespaceOf, () => `/_sys/${taskQueues.node(victim.nodeId)}/1`],
    ['a model it did not register', namespaceOf, () => taskQueues.model('qwen2.5-0.5b-instruct')],
    ['the control queue', namespaceOf, () => controlQueue],
    ['its own queue in another namespace', () => 'temporal-system', () => taskQueues.node(attackerId)],
  ])('polling %s → PERMISSION_DENIED', async (_what, ns, queue) => {
    const poll = ws.PollActivityTaskQueueRequest.encode({ namespace: ns(), taskQueue: { name: queue() }, identity: 'attacker' }).finish();
    expect(await temporal('PollActivityTaskQueue', poll)).toMatchObject(denied);
  });

  it.each(['RecordActivityTaskHeartbeat', 'RespondActivityTaskCompleted', 'RespondActivityTaskFailed', 'RespondActivityTaskCanceled'])('%s of a task token it was not handed → PERMISSION_DENIED', async (method) => {
    expect(await temporal(method, onTask(method, randomBytes(96)))).toMatchObject(denied);
  });
});

function namespaceOf(): string {
  return namespace;
}

/** The call a worker makes on a task it holds; completions claim the victim's name. */
function onTask(method: string, taskToken: Uint8Array, result: unknown = forgedAnswer(victimRequest)): Uint8Array {
  switch (method) {
    case 'RecordActivityTaskHeartbeat':
      return ws.RecordActivityTaskHeartbeatRequest.encode({ namespace, taskToken, details: { payloads: [json('forged progress')] } }).finish();
    case 'RespondActivityTaskCompleted':
      return ws.RespondActivityTaskCompletedRequest.encode({ namespace, taskToken, result: { payloads: [json(result)] } }).finish();
    case 'RespondActivityTaskFailed':
      return ws.RespondActivityTaskFailedRequest.encode({ namespace, taskToken, failure: { message: 'forged', applicationFailureInfo: { type: 'INFER_BAD_INPUT', nonRetryable: true } } }).finish();
    default:
      return ws.RespondActivityTaskCanceledRequest.encode({ namespace, taskToken }).finish();
  }
}

describe('sessions', () => {
  it('opens once per signed body: the same body again is refused as replayed', async () => {
    const body = await sessionBody();
    expect(await unary(nodeEdgeService.openSession, body, null)).toMatchObject({ code: grpc.status.OK });
    expect(await unary(nodeEdgeService.openSession, body, null)).toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringMatching(/^SESSION_REPLAYED/) });
  });

  it.each([
    ['for the victim\'s node id, signed by the attacker', () => sessionBody({ nodeId: victim.nodeId }), grpc.status.PERMISSION_DENIED, /^SESSION_NOT_REGISTERED/],
    ['naming the victim\'s operator, signed by the attacker', () => sessionBody({ nodeId: victim.nodeId, operator: victimOperator }), grpc.status.UNAUTHENTICATED, /^SESSION_BAD_SIGNATURE/],
    ['for another edge', () => sessionBody({ audience: 'another-edge' }), grpc.status.INVALID_ARGUMENT, /^SESSION_INVALID/],
    ['that has expired', () => sessionBody({ expiry: Math.floor(Date.now() / 1000) - 1 }), grpc.status.UNAUTHENTICATED, /^SESSION_EXPIRED/],
    ['for an unregistered node id', () => sessionBody({ nodeId: unique('ghost') }), grpc.status.PERMISSION_DENIED, /^SESSION_NOT_REGISTERED/],
    ['claiming more slots than a session may', () => sessionBody({ slots: 100_000 }), grpc.status.INVALID_ARGUMENT, /^SESSION_INVALID/],
  ])('a session %s is refused', async (_what, body, code, details) => {
    expect(await unary(nodeEdgeService.openSession, await body(), null)).toMatchObject({ code, details: expect.stringMatching(details) });
  });

  it('cannot take over the victim\'s node id by registering it under its own key', async () => {
    const body = await signRegistration(attacker, { nodeId: victim.nodeId, models: [model], modelHashes: [victimHash], gpu: 'cpu', version: '0.1.0' }, info.chainId);
    expect(await unary(nodeEdgeService.register, body, null)).toMatchObject({ code: grpc.status.ALREADY_EXISTS });
    expect((await registrationOf(victim.nodeId))!.operator).toBe(victimOperator);
  });
});

describe('a victim request in flight', () => {
  it('the attacker can neither settle, read, overwrite nor watch it: the victim\'s answer equals an uninterrupted one', async () => {
    const input = request(160);
    const { requestId } = input;
    const handle = await run(input, [victim.nodeId]);
    await waitForChunks(input.subject, 3);

    // Task tokens are unsigned protobuf (anyone who knows the ids can build one): grant the
    // attacker the victim's real token; only the edge's ledger of who holds what stands in the way.
    const token = victimTaskToken(requestId);
    for (const method of ['RecordActivityTaskHeartbeat', 'RespondActivityTaskCompleted', 'RespondActivityTaskFailed', 'RespondActivityTaskCanceled']) {
      expect(await temporal(method, onTask(method, token, forgedAnswer(input))), method).toMatchObject(denied);
    }
    expect(await unary(nodeEdgeService.readDelivered, { requestId })).toMatchObject(denied);
    const forged = { requestId, tokens: [1, 2, 3], text: 'FORGED', finish: { reason: 'stop' as const, usage: forgedAnswer(input).usage } };
    // Replace the whole answer; and append right after what is delivered (fencing is not the only guard).
    expect(await unary(nodeEdgeService.publishChunk, { ...forged, seq: 0, expectLastSubjectSeq: 0 })).toMatchObject(denied);
    const last = await jsm.streams.getMessage(tokenStreamName, { last_by_subj: input.subject });
    expect(await unary(nodeEdgeService.publishChunk, { ...forged, seq: (await chunks(input.subject)).length, expectLastSubjectSeq: last!.seq })).toMatchObject(denied);
    expect((await handle.describe()).status.name, 'attacked while in flight').toBe('RUNNING');
    // No cancel event reaches the attacker (for the status it should get, see the WatchCancel test below).
    expect((await watchCancel(requestId)).code).not.toBe(grpc.status.OK);

    const outcome = await handle.result();
    expect(outcome.result.nodeId).toBe(victim.nodeId);
    expect(outcome.attempts.map((a) => a.outcome)).toEqual(['ok']);
    const all = await chunks(input.subject);
    expect(all.map((c) => c.seq)).toEqual(all.map((_, i) => i));
    expect(new Set(all.map((c) => c.nodeId))).toEqual(new Set([victim.nodeId]));
    expect(all.flatMap((c) => c.tokens)).toEqual(outcome.result.tokens);
    // Greedy decoding is deterministic: the same question asked again, unattacked, gets the same answer.
    const reference = await (await run({ ...request(160), messages: input.messages }, [victim.nodeId])).result();
    expect(outcome.result.tokens).toEqual(reference.result.tokens);
    expect(outcome.result.text).toBe(reference.result.text);
  });

  // A refused WatchCancel must be answered, not left open until the caller's deadline: else anyone,
  // without a session, could hold streams open at the edge.
  it.each([
    ['no session', null],
    ['a garbage token', 'garbage'],
    ['a valid session, on a request it does not hold', undefined],
  ])('WatchCancel with %s is answered with a refusal', async (_what, token) => {
    const answer = await watchCancel(victimRequest.requestId, token === undefined ? session : token);
    expect([grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED]).toContain(answer.code);
  });
});

/** The victim's real task token for a request, read from the edge's ledger (the test observes; see above). */
function victimTaskToken(requestId: string): Buffer {
  const ledger = net.edge.tasks as unknown as { tasks: Map<string, HeldTask> };
  const held = [...ledger.tasks.values()].find((t) => t.nodeId === victim.nodeId && t.requestId === requestId);
  expect(held, 'the victim holds the task').toBeDefined();
  return Buffer.from(held!.key, 'base64');
}

describe('NATS', () => {
  it('refuses an anonymous client', async () => {
    const { servers } = natsConnectionOptions(stack().natsUrl);
    await expect(connect({ servers, name: 'intruder', timeout: 5_000, reconnect: false })).rejects.toMatchObject({ name: 'AuthorizationError' });
  });
});

describe('heartbeats', () => {
  it('are capped to the session\'s slots and written only under the attacker\'s own key', async () => {
    const kv = await nodesKv(net.nc);
    expect(await unary(nodeEdgeService.heartbeat, report())).toMatchObject({ code: grpc.status.OK });
    const beat = heartbeatSchema.parse((await kv.get(attackerId))!.json());
    expect(beat).toMatchObject({ nodeId: attackerId, operator: attacker.address, maxParallel: 2 });
    expect(beat.freeSlots).toBeLessThanOrEqual(2);
    expect(beat.models.map((m) => m.slots)).toEqual([2]);
    const victimBeat = heartbeatSchema.parse((await kv.get(victim.nodeId))!.json());
    expect(victimBeat).toMatchObject({ nodeId: victim.nodeId, operator: victimOperator, status: 'serving', gpu: { backend: 'cpu' } });

    // Offline too touches only its own key (and takes the attacker out of routing for what follows).
    expect(await unary(nodeEdgeService.offline, {})).toMatchObject({ code: grpc.status.OK });
    expect((await kv.get(attackerId))?.operation).not.toBe('PUT');
    expect((await kv.get(victim.nodeId))?.operation).toBe('PUT');
  });

  it.each([
    ['a model it did not register', () => report({ models: [{ id: 'qwen2.5-0.5b-instruct', hash: victimHash, contextSize: 2048, slots: 1 }] }), grpc.status.PERMISSION_DENIED],
    ['another file for its model', () => report({ models: [{ id: model, hash: 'f'.repeat(64), contextSize: 2048, slots: 1 }] }), grpc.status.PERMISSION_DENIED],
    ['the victim\'s node id', () => ({ ...report(), nodeId: victim.nodeId }), grpc.status.INVALID_ARGUMENT],
  ])('naming %s are refused', async (_what, beat, code) => {
    expect(await unary(nodeEdgeService.heartbeat, beat())).toMatchObject({ code });
  });
});

describe('answering as another node', () => {
  it('a worker through the edge that answers a model-queue request in the victim\'s name is refused: the request never completes with that answer', async () => {
    // Fill the victim's two slots (its own queue, then the model queue) so the attacker's worker takes the next task.
    const busy = [request(200, 'Busy one.'), request(200, 'Busy two.')];
    const busyHandles = [await run(busy[0]!, [victim.nodeId])];
    await waitForChunks(busy[0]!.subject, 1);
    busyHandles.push(await run(busy[1]!, []));
    await waitForChunks(busy[1]!.subject, 1);

    let calls = 0;
    const connection = await NativeConnection.connect({ address: net.edge.address, metadata: { [sessionMetadataKey]: session } });
    const worker = await Worker.create({
      connection,
      namespace,
      taskQueue: taskQueues.model(model),
      activities: {
        async infer(input: InferInput): Promise<InferResult> {
          calls++;
          return forgedAnswer(input);
        },
      },
    });
    const running = worker.run();
    try {
      const input = request(16, 'Who answers this?');
      const outcome: InferenceOutcome | Error = await (await run(input, [])).result().catch((err: Error) => err);
      expect(calls, 'the attacker was handed the task').toBeGreaterThan(0);
      // Failed over to the victim once it was free, or failed: never the forged answer.
      if (outcome instanceof Error) expect(String(outcome.cause)).toMatch(/no node could serve/);
      else {
        expect(outcome.result).toMatchObject({ nodeId: victim.nodeId, text: expect.not.stringMatching(/^FORGED$/) });
        expect((await chunks(input.subject)).flatMap((c) => c.tokens)).toEqual(outcome.result.tokens);
      }
    } finally {
      worker.shutdown();
      await running;
      await connection.close();
      await Promise.all(busyHandles.map((h) => h.result()));
    }
    await expectVictimUntouched();
  });
});

// What a poll may set on a whole queue (taskQueueMetadata, versioning) is never forwarded: see
// edge/temporal-proxy.test.ts, which reads what reaches Temporal.

/** The actor's view less what changes by itself (liveness samples). */
function comparable(view: NodeActorView) {
  const { uptimeChecks: _c, uptimeLive: _l, lastActivityAt: _a, ...record } = view.record;
  return { state: view.state, operator: view.operator, models: view.models, record };
}

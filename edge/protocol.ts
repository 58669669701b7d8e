/**
 * The edge's own gRPC service, `gitblock.edge.v1.NodeEdge`, beside the Temporal worker calls it
 * forwards on the same port. Messages are JSON (small, few, and validated with zod on arrival
 * either way), so client and server share this one definition and no .proto compiler.
 *
 * Everything but `Info`, `Register` and `OpenSession` needs the session token in the
 * `x-gitblock-session` metadata; the Temporal worker calls need it too.
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import type { Delivered } from '../activities/token-stream.ts';
import type { FinishReason, Usage } from '../domain/inference.ts';
import type { Hardware } from '../domain/heartbeat.ts';
import type { RegistrationBody } from '../domain/registration.ts';
import type { EdgeSessionBody } from '../domain/edge-session.ts';

export const sessionMetadataKey = 'x-gitblock-session';
export const edgeServiceName = 'gitblock.edge.v1.NodeEdge';

/** How the edge names itself and the chain that registrations and sessions are signed for. */
export interface EdgeInfo {
  audience: string;
  chainId: number;
  namespace: string;
}

export interface RegisterReply {
  nodeId: string;
  operator: string;
  status: 'registered' | 're-registered';
}

export interface SessionReply {
  token: string;
  /** Unix seconds. */
  expiresAt: number;
}

/** What a node says of itself every few seconds; the edge checks, caps and stamps it. */
export interface NodeReport {
  version: string;
  status: 'serving' | 'draining';
  gpu: Hardware;
  models: { id: string; hash: string; contextSize: number; slots: number }[];
  maxParallel: number;
  freeMemoryBytes: number;
}

export interface PublishRequest {
  requestId: string;
  seq: number;
  tokens: number[];
  text: string;
  finish?: { reason: FinishReason; usage: Usage } | undefined;
  /** Fencing: the stream sequence this chunk must follow (0 for the subject's first). */
  expectLastSubjectSeq: number;
}

export interface PublishReply {
  streamSeq: number;
  /** On the chunk stream, a refused chunk is answered in line (the stream stays open). */
  error?: { code: number; details: string } | undefined;
}

export interface TaskRef {
  requestId: string;
}

export interface CancelEvent {
  cancelled: true;
}

export type Empty = Record<string, never>;

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value ?? {})),
  deserialize: (bytes: Buffer): unknown => (bytes.length ? JSON.parse(bytes.toString('utf8')) : {}),
};

function method<Req, Res>(name: string, responseStream = false, requestStream = false): MethodDefinition<Req, Res> {
  return {
    path: `/${edgeServiceName}/${name}`,
    requestStream,
    responseStream,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize as (b: Buffer) => Req,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize as (b: Buffer) => Res,
    originalName: name,
  };
}

export const nodeEdgeService = {
  info: method<Empty, EdgeInfo>('Info'),
  register: method<RegistrationBody, RegisterReply>('Register'),
  openSession: method<EdgeSessionBody, SessionReply>('OpenSession'),
  heartbeat: method<NodeReport, Empty>('Heartbeat'),
  offline: method<Empty, Empty>('Offline'),
  readDelivered: method<TaskRef, Delivered>('ReadDelivered'),
  publishChunk: method<PublishRequest, PublishReply>('PublishChunk'),
  /** One stream per task for all its chunks, answered in order: no call set-up per chunk. */
  publishChunks: method<PublishRequest, PublishReply>('PublishChunks', true, true),
  watchCancel: method<TaskRef, CancelEvent>('WatchCancel', true),
} satisfies ServiceDefinition;

/** Stable reasons carried in a refused call's details, e.g. `STREAM_SUPERSEDED: …` (domain/failures.ts). */
export { edgeErrors } from '../domain/failures.ts';

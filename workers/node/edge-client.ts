/**
 * A GPU node's one connection to the network: the edge. Registration, the signed session
 * (renewed before it expires), heartbeats, and the token stream of each task the node holds
 * all go through it; the node's Temporal worker polls through the same address.
 */
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { LocalAccount } from 'viem';
import { StreamSupersededError, type ChunkPublisher, type Delivered, type TaskStreams } from '../../activities/token-stream.ts';
import { defaultSessionLifetimeSeconds, edgeSessionFieldsSchema, edgeSessionTypedData, sessionRenewAfterMs, type EdgeSessionBody } from '../../domain/edge-session.ts';
import type { RegistrationBody } from '../../domain/registration.ts';
import { edgeErrors, nodeEdgeService, sessionMetadataKey, type EdgeInfo, type NodeReport, type PublishReply, type PublishRequest, type RegisterReply, type SessionReply } from '../../edge/protocol.ts';
import { BaseError } from '../../domain/errors.ts';

const NodeEdgeClient = grpc.makeGenericClientConstructor(nodeEdgeService, 'NodeEdge');

/** How a node reaches its edge: TLS (with a CA of its own, else the system's roots), or plaintext. */
export type EdgeTransport = { tls: false } | { tls: true; ca?: Buffer | undefined };

const loopback = /^(127\.\d+\.\d+\.\d+|localhost|\[?::1\]?)$/;

/**
 * TLS unless the edge is on this machine or the operator opted out: a session token and every
 * prompt a node serves cross this connection.
 */
export function edgeTransport(address: string, options: { ca?: Buffer | undefined; plaintext?: boolean | undefined }): EdgeTransport {
  if (options.ca) return { tls: true, ca: options.ca };
  const host = address.slice(0, address.lastIndexOf(':'));
  if (options.plaintext || loopback.test(host)) return { tls: false };
  return { tls: true };
}

/** The same choice as Temporal's NativeConnection takes it. */
export function nativeTls(transport: EdgeTransport): false | true | { serverRootCACertificate: Buffer } {
  if (!transport.tls) return false;
  return transport.ca ? { serverRootCACertificate: transport.ca } : true;
}

/** The edge refused a call or could not be reached; `code` is the gRPC status. */
export class EdgeError extends BaseError<'EDGE_CALL_FAILED'> {
  override readonly name = 'EdgeError';
  constructor(
    /** The gRPC status the edge (or the transport) answered. */
    readonly grpcCode: grpc.status,
    message: string,
  ) {
    super(message, { code: 'EDGE_CALL_FAILED' });
  }
}

type Unary<Req, Res> = (request: Req, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, value?: Res) => void) => grpc.ClientUnaryCall;

export class EdgeClient {
  private readonly client: grpc.Client & Record<string, unknown>;
  private token: string | undefined;

  constructor(
    readonly address: string,
    transport: EdgeTransport = { tls: false },
  ) {
    const credentials = transport.tls ? grpc.credentials.createSsl(transport.ca ?? null) : grpc.credentials.createInsecure();
    this.client = new NodeEdgeClient(address, credentials, {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.enable_channelz': 0,
    });
  }

  /** The session's token, as every call after `openSession` carries it. */
  private metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    if (this.token) metadata.set(sessionMetadataKey, this.token);
    return metadata;
  }

  private call<Req, Res>(method: keyof typeof nodeEdgeService, request: Req, timeoutMs = 15_000): Promise<Res> {
    const metadata = this.metadata();
    const fn = (this.client[method] as Unary<Req, Res>).bind(this.client);
    return new Promise((resolve, reject) => {
      fn(request, metadata, { deadline: Date.now() + timeoutMs }, (err, value) => {
        if (err) {
          const what = err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED ? `cannot reach the edge at ${this.address}: ${err.details}` : err.details;
          reject(new EdgeError(err.code, what));
        } else resolve(value as Res);
      });
    });
  }

  info(): Promise<EdgeInfo> {
    return this.call('info', {});
  }

  register(body: RegistrationBody): Promise<RegisterReply> {
    return this.call('register', body);
  }

  /** Opens a session signed by the operator key; later calls (and the worker's, via `onToken`) carry it. */
  async openSession(account: LocalAccount, info: EdgeInfo, nodeId: string, slots: number, lifetimeSeconds = defaultSessionLifetimeSeconds): Promise<SessionReply> {
    const session = edgeSessionFieldsSchema.parse({
      nodeId,
      operator: account.address,
      audience: info.audience,
      slots,
      expiry: Math.floor(Date.now() / 1000) + lifetimeSeconds,
      nonce: `0x${randomBytes(32).toString('hex')}`,
    });
    const body: EdgeSessionBody = { session, signature: await account.signTypedData(edgeSessionTypedData(info.chainId, session)) };
    const reply = await this.call<EdgeSessionBody, SessionReply>('openSession', body);
    this.token = reply.token;
    return reply;
  }

  get sessionToken(): string | undefined {
    return this.token;
  }

  heartbeat(report: NodeReport): Promise<unknown> {
    return this.call('heartbeat', report, 5_000);
  }

  offline(): Promise<unknown> {
    return this.call('offline', {}, 5_000);
  }

  /** The token stream of the tasks this node holds, through the edge. */
  streams(): TaskStreams {
    return {
      readDelivered: (input) => this.call<{ requestId: string }, Delivered>('readDelivered', { requestId: input.requestId }, 60_000),
      publisher: (input): ChunkPublisher => this.chunkStream(input.requestId),
      watchCancel: (input, onCancel) => {
        const stream = (this.client['watchCancel'] as (req: unknown, md: grpc.Metadata) => grpc.ClientReadableStream<{ cancelled?: boolean }>).call(this.client, { requestId: input.requestId }, this.metadata());
        stream.on('data', (event: { cancelled?: boolean } | undefined) => {
          if (event?.cancelled === true) onCancel();
        });
        // A refused or broken watch is not fatal: cancellation still arrives with the next heartbeat.
        stream.on('error', () => {});
        return () => stream.cancel();
      },
    };
  }

  /**
   * One stream per task for its chunks (a call per chunk cost measurable tokens/s, bench/edge.ts).
   * Chunks are answered in order; a refused one rejects its publish, and the stream goes on.
   */
  private chunkStream(requestId: string): ChunkPublisher {
    type Pending = { resolve: (seq: number) => void; reject: (err: Error) => void };
    let stream: grpc.ClientDuplexStream<PublishRequest, PublishReply> | undefined;
    let pending: Pending[] = [];
    const broken = (err: Error) => {
      for (const p of pending) p.reject(err);
      pending = [];
      stream = undefined;
    };
    const open = () => {
      const opened = (this.client['publishChunks'] as (md: grpc.Metadata) => grpc.ClientDuplexStream<PublishRequest, PublishReply>).call(this.client, this.metadata());
      opened.on('data', (reply: PublishReply) => {
        const next = pending.shift();
        if (!next) return;
        if (!reply.error) next.resolve(reply.streamSeq);
        else if (reply.error.details.startsWith(edgeErrors.superseded)) next.reject(new StreamSupersededError(reply.error.details));
        else next.reject(new EdgeError(reply.error.code, reply.error.details));
      });
      opened.on('error', (err: grpc.ServiceError) => {
        if (stream === opened) broken(new EdgeError(err.code, `cannot publish through the edge at ${this.address}: ${err.details}`));
      });
      opened.on('end', () => {
        if (stream === opened) broken(new EdgeError(grpc.status.UNAVAILABLE, `the edge at ${this.address} closed the chunk stream`));
      });
      return opened;
    };
    // Opened now, while the prompt is evaluated, so the first token does not wait for it.
    stream = open();
    return {
      publish: (chunk, expectLastSubjectSeq) =>
        new Promise<number>((resolve, reject) => {
          stream ??= open();
          const current = stream;
          // An edge that stops answering must not hold the task for ever: give up on this stream.
          const timer = setTimeout(() => {
            if (stream === current) broken(new EdgeError(grpc.status.DEADLINE_EXCEEDED, `the edge at ${this.address} did not acknowledge a chunk within 15 s`));
            current.cancel();
          }, 15_000);
          pending.push({
            resolve: (seq) => {
              clearTimeout(timer);
              resolve(seq);
            },
            reject: (err) => {
              clearTimeout(timer);
              reject(err);
            },
          });
          current.write({ requestId, seq: chunk.seq, tokens: chunk.tokens, text: chunk.text, finish: chunk.finish, expectLastSubjectSeq });
        }),
      close: () => {
        const closing = stream;
        stream = undefined;
        closing?.end();
      },
    };
  }

  close(): void {
    this.client.close();
  }
}

/**
 * Keeps a session open: renews it two thirds into its life and hands each new token to
 * `onToken` (the worker connection's metadata). A failed renewal is retried every few seconds
 * while the old session still holds.
 */
export class SessionKeeper {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly edge: EdgeClient,
    private readonly open: () => Promise<SessionReply>,
    private readonly onToken: (token: string) => Promise<void>,
    private readonly log: (line: string) => void,
  ) {}

  async start(): Promise<string> {
    const reply = await this.open();
    this.schedule(reply);
    return reply.token;
  }

  private schedule(reply: SessionReply): void {
    if (this.stopped) return;
    const lifetimeS = Math.max(1, reply.expiresAt - Math.floor(Date.now() / 1000));
    this.timer = setTimeout(() => void this.renew(), sessionRenewAfterMs(lifetimeS));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    try {
      const reply = await this.open();
      await this.onToken(reply.token);
      this.schedule(reply);
    } catch (err) {
      this.log(`session renewal at the edge ${this.edge.address} failed, retrying: ${(err as Error).message}`);
      if (!this.stopped) {
        this.timer = setTimeout(() => void this.renew(), 5_000);
        this.timer.unref();
      }
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

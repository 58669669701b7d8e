/**
 * Writes one request's token chunks to its JetStream subject, fenced: every publish states
 * the stream sequence it expects to follow (`Nats-Expected-Last-Subject-Sequence`). A node
 * that takes over after a failover starts from exactly what was delivered, and a presumed-dead
 * node that wakes up cannot interleave its chunks: its next publish is refused.
 *
 * Publishing never blocks generation: tokens queue up while one publish is in flight and go
 * out together in the next chunk, so chunks grow when the network is slower than the model.
 * After the first chunk (sent at once, for time to first token), chunks go out at most once
 * per frame (16 ms): a reader cannot see faster, and each publish costs the NATS server CPU
 * that a GPU node's host shares with generation.
 */
import { JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { z } from 'zod';
import type { NatsConnection } from '@nats-io/transport-node';
import { cancelSubject, tokenStreamName, type FinishReason, type InferInput, type TokenChunk, type Usage } from '../domain/inference.ts';
import { codedError } from '../domain/errors.ts';
import { tokenChunkSchema } from '../domain/inference-schema.ts';
import { edgeErrors } from '../domain/failures.ts';

/** JetStream's answer to a publish whose expected last subject sequence is not the last one. */
export const wrongLastSequence = 10071;
export const minChunkIntervalMs = 16;

export class StreamSupersededError extends codedError(edgeErrors.superseded) {
  override name = 'StreamSupersededError';
}

export interface Delivered {
  tokens: number[];
  text: string;
  nextSeq: number;
  /** Stream sequence of the subject's last message, 0 when none. */
  lastStreamSeq: number;
  finished: TokenChunk['finish'];
}

/** Chunks were written by other nodes, which are untrusted: a continuation builds on them. */
const chunkSchema = tokenChunkSchema;

export interface ReadDeliveredOptions {
  /** Called every `progressEvery` messages: one round trip each, so a long stream takes a while. */
  onProgress?: (messages: number) => void;
}

export const progressEvery = 100;

/** A subject nothing was written to. */
export function emptyDelivery(): Delivered {
  return { tokens: [], text: '', nextSeq: 0, lastStreamSeq: 0, finished: undefined };
}

/** Everything already on a request's subject, in order. */
export async function readDelivered(jsm: JetStreamManager, subject: string, options: ReadDeliveredOptions = {}): Promise<Delivered> {
  const delivered = emptyDelivery();
  let from = 1;
  for (let read = 0; ; read++) {
    if (read > 0 && read % progressEvery === 0) options.onProgress?.(read);
    const message = await jsm.direct.getMessage(tokenStreamName, { seq: from, next_by_subj: subject });
    if (!message) return delivered;
    const chunk = parseChunk(message.string(), subject, message.seq);
    if (chunk.seq !== delivered.nextSeq) throw new Error(`token stream ${subject} has a gap: chunk ${chunk.seq} after ${delivered.nextSeq - 1}`);
    delivered.tokens.push(...chunk.tokens);
    delivered.text += chunk.text;
    delivered.nextSeq = chunk.seq + 1;
    delivered.lastStreamSeq = message.seq;
    delivered.finished = chunk.finish;
    from = message.seq + 1;
  }
}

function parseChunk(body: string, subject: string, streamSeq: number): z.infer<typeof chunkSchema> {
  const where = () => `token stream ${subject} has a malformed chunk at stream sequence ${streamSeq}`;
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error(`${where()}: not JSON`);
  }
  const parsed = chunkSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new Error(`${where()}: ${issue.path.join('.') || 'chunk'}: ${issue.message}`);
}

/**
 * Where chunks go: straight into JetStream (the edge, tests, benchmarks), or through the edge
 * (a GPU node, which holds no NATS connection). Either way fenced: `expectLastSubjectSeq` is the
 * stream sequence the chunk must follow, and a taken-over stream is a StreamSupersededError.
 */
export interface ChunkPublisher {
  /** Publishes one chunk; resolves to its stream sequence. */
  publish(chunk: TokenChunk, expectLastSubjectSeq: number): Promise<number>;
  /** Releases what the publisher holds open (the edge's chunk stream), once the task is done. */
  close?(): void;
}

/** A publisher on a JetStream client, for one request's subject. */
export function jetStreamPublisher(js: JetStreamClient, subject: string): ChunkPublisher {
  return {
    async publish(chunk, expectLastSubjectSeq) {
      try {
        const ack = await js.publish(subject, JSON.stringify(chunk), { expect: { lastSubjectSequence: expectLastSubjectSeq } });
        return ack.seq;
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === wrongLastSequence) throw new StreamSupersededError(`another attempt has taken over ${subject}`);
        throw err;
      }
    },
  };
}

/** A request's token stream as the `infer` activity uses it. */
export interface TaskStreams {
  /** What earlier attempts delivered, to continue after it. */
  readDelivered(input: InferInput, options?: ReadDeliveredOptions): Promise<Delivered>;
  publisher(input: InferInput): ChunkPublisher;
  /** Calls `onCancel` once if the client cancels the request; returns a function that stops watching. */
  watchCancel(input: InferInput, onCancel: () => void): () => void;
}

/** The stream on NATS itself: for the edge's own tests and the benchmark's no-edge baseline. */
export function natsTaskStreams(nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager): TaskStreams {
  return {
    readDelivered: (input, options) => readDelivered(jsm, input.subject, options),
    publisher: (input) => jetStreamPublisher(js, input.subject),
    watchCancel: (input, onCancel) => {
      const sub = nc.subscribe(cancelSubject(input.requestId), { max: 1, callback: onCancel });
      return () => sub.unsubscribe();
    },
  };
}

export class TokenStreamWriter {
  private queuedTokens: number[] = [];
  private queuedText = '';
  private inFlight: Promise<void> | undefined;
  private failure: Error | undefined;
  private lastPublishAt = 0;

  constructor(
    private readonly publisher: ChunkPublisher,
    private readonly nodeId: string,
    private nextSeq: number,
    private lastStreamSeq: number,
  ) {}

  get published(): number {
    return this.nextSeq;
  }

  /** The first error a publish hit (superseded, NATS down); generation should stop on it. */
  get error(): unknown {
    return this.failure;
  }

  push(token: number, text: string): void {
    this.queuedTokens.push(token);
    this.queuedText += text;
    // After a failure nothing more goes out: generation is being stopped, and a drain started
    // now would end at once and leave a settled promise behind for flush() to wait on.
    if (!this.inFlight && !this.failure) this.inFlight = this.drain();
  }

  /**
   * Text with no new token (held back until generation ended). It goes out with the next
   * chunk, normally the final one, rather than costing a publish of its own.
   */
  pushText(text: string): void {
    this.queuedText += text;
  }

  /** Publishes what is queued plus the final chunk, and waits for every ack. */
  async finish(reason: FinishReason, usage: Usage): Promise<void> {
    await this.flush();
    if (this.failure) throw this.failure;
    await this.publish({ seq: this.nextSeq, nodeId: this.nodeId, tokens: this.take(), text: this.takeText(), finish: { reason, usage } });
  }

  /** Waits for queued chunks; used when generation stops early. */
  async flush(): Promise<void> {
    // One await each: drain() clears inFlight itself when it ends, so this cannot spin.
    while (this.inFlight) await this.inFlight;
  }

  private take(): number[] {
    const tokens = this.queuedTokens;
    this.queuedTokens = [];
    return tokens;
  }

  private takeText(): string {
    const text = this.queuedText;
    this.queuedText = '';
    return text;
  }

  private async drain(): Promise<void> {
    // Yield first, so that `inFlight` is assigned before this can finish and clear it: a publish
    // that fails synchronously-fast used to clear it before the assignment and leave a settled
    // promise in `inFlight` for good, and flush()/finish() spun on it at 100 % CPU.
    await Promise.resolve();
    try {
      while (this.queuedTokens.length && !this.failure) {
        const wait = this.lastPublishAt + minChunkIntervalMs - performance.now();
        if (this.nextSeq > 0 && wait > 0) await new Promise((r) => setTimeout(r, wait));
        this.lastPublishAt = performance.now();
        await this.publish({ seq: this.nextSeq, nodeId: this.nodeId, tokens: this.take(), text: this.takeText() });
      }
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
    } finally {
      this.inFlight = undefined;
    }
  }

  private async publish(chunk: TokenChunk): Promise<void> {
    this.lastStreamSeq = await this.publisher.publish(chunk, this.lastStreamSeq);
    this.nextSeq = chunk.seq + 1;
  }
}

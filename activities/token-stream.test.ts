/** Reading and writing a request's token chunks against the real JetStream token stream. */
import { jetstream, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats } from '../connections/nats.ts';
import { ensureTokenStream } from '../connections/streams.ts';
import { tokenSubject, type TokenChunk } from '../domain/inference.ts';
import { stack, unique } from '../test/helpers.ts';
import { jetStreamPublisher, readDelivered, StreamSupersededError, TokenStreamWriter, type ChunkPublisher } from './token-stream.ts';

let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;

beforeAll(async () => {
  nc = await connectNats(stack().natsUrl, 'token-stream-test');
  jsm = await ensureTokenStream(nc);
  js = jetstream(nc);
});

afterAll(async () => {
  await nc?.close();
});

const usage = { promptTokens: 3, completionTokens: 2, totalTokens: 5 };
const chunk = (seq: number, text: string): TokenChunk => ({ seq, nodeId: 'node-a', tokens: [seq + 100], text });

describe('readDelivered', () => {
  it('reads every chunk in order, reporting progress every 100 messages', async () => {
    const subject = tokenSubject(unique('r'));
    for (let seq = 0; seq < 250; seq++) await js.publish(subject, JSON.stringify(chunk(seq, `${seq},`)));
    const progress: number[] = [];
    const delivered = await readDelivered(jsm, subject, { onProgress: (n) => progress.push(n) });
    expect(progress).toEqual([100, 200]);
    expect(delivered.tokens).toEqual(Array.from({ length: 250 }, (_, i) => i + 100));
    expect(delivered.nextSeq).toBe(250);
    expect(delivered.finished).toBeUndefined();
  });

  it.each([
    ['not JSON', 'not json'],
    ['a negative token id', JSON.stringify({ ...chunk(1, 'b'), tokens: [-1] })],
    ['a fractional seq', JSON.stringify({ ...chunk(1, 'b'), seq: 1.5 })],
    ['text that is not a string', JSON.stringify({ ...chunk(1, 'b'), text: 7 })],
    ['an unknown finish reason', JSON.stringify({ ...chunk(1, 'b'), finish: { reason: 'eos', usage } })],
  ])('refuses a chunk with %s, naming the subject', async (_, bad) => {
    const subject = tokenSubject(unique('r'));
    await js.publish(subject, JSON.stringify(chunk(0, 'a')));
    await js.publish(subject, bad);
    await expect(readDelivered(jsm, subject)).rejects.toThrow(`token stream ${subject} has a malformed chunk`);
  });
});

describe('TokenStreamWriter', () => {
  it('publishes text that comes without a token in the final chunk, adding no token', async () => {
    const subject = tokenSubject(unique('r'));
    const writer = new TokenStreamWriter(jetStreamPublisher(js, subject), 'node-a', 0, 0);
    writer.push(7, 'mig');
    writer.push(8, '');
    writer.pushText('ht');
    await writer.finish('length', usage);
    const delivered = await readDelivered(jsm, subject);
    expect(delivered.tokens).toEqual([7, 8]);
    expect(delivered.text).toBe('might');
    expect(delivered.finished).toEqual({ reason: 'length', usage });
  });

  /** Settles within `ms` or fails the test: a wedged writer spins for ever instead. */
  const within = <T>(promise: Promise<T>, ms = 2_000): Promise<T> =>
    Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`still waiting after ${ms} ms: the writer is wedged`)), ms))]);

  it('stops, and never wedges, after junk on the subject makes a publish fail', async () => {
    const subject = tokenSubject(unique('r'));
    const writer = new TokenStreamWriter(jetStreamPublisher(js, subject), 'node-a', 0, 0);
    writer.push(1, 'a');
    await within(writer.flush());
    // Someone else's message on the subject: the next fenced publish is refused.
    await js.publish(subject, 'junk');
    writer.push(2, 'b');
    await within(writer.flush());
    expect(writer.error).toBeInstanceOf(StreamSupersededError);
    // Tokens still arriving after the failure (generation stops a token later) start nothing.
    writer.push(3, 'c');
    writer.push(4, 'd');
    await within(writer.flush());
    await expect(within(writer.finish('stop', usage))).rejects.toBeInstanceOf(StreamSupersededError);
  });

  it('returns from flush and finish when every publish fails at once', async () => {
    let calls = 0;
    const failing: ChunkPublisher = {
      publish: () => {
        calls++;
        return Promise.reject(new Error('NATS is down'));
      },
    };
    const writer = new TokenStreamWriter(failing, 'node-a', 0, 0);
    for (let i = 0; i < 50; i++) writer.push(i, 'x');
    await within(writer.flush());
    expect((writer.error as Error).message).toBe('NATS is down');
    for (let i = 0; i < 50; i++) writer.push(i, 'x');
    await within(writer.flush());
    await expect(within(writer.finish('length', usage))).rejects.toThrow('NATS is down');
    expect(calls).toBe(1);
  });
});

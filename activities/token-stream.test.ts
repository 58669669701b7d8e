/** Reading and writing a request's token chunks against the real JetStream token stream. */
import { jetstream, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats } from '../connections/nats.ts';
import { ensureTokenStream } from '../connections/streams.ts';
import { tokenSubject, type TokenChunk } from '../domain/inference.ts';
import { stack, unique } from '../test/helpers.ts';
import { readDelivered, TokenStreamWriter } from './token-stream.ts';

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
    const writer = new TokenStreamWriter(js, subject, 'node-a', 0, 0);
    writer.push(7, 'mig');
    writer.push(8, '');
    writer.pushText('ht');
    await writer.finish('length', usage);
    const delivered = await readDelivered(jsm, subject);
    expect(delivered.tokens).toEqual([7, 8]);
    expect(delivered.text).toBe('might');
    expect(delivered.finished).toEqual({ reason: 'length', usage });
  });
});

/** The gateway's token relay against the real JetStream token stream. */
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats } from '../connections/nats.ts';
import { ensureTokenStream } from '../connections/streams.ts';
import { tokenSubject, type TokenChunk } from '../domain/inference.ts';
import { stack, unique } from '../test/helpers.ts';
import { TokenRelay } from './relay.ts';

let nc: NatsConnection;
let js: JetStreamClient;

beforeAll(async () => {
  nc = await connectNats(stack().natsUrl, 'relay-test');
  await ensureTokenStream(nc);
  js = jetstream(nc);
});

afterAll(async () => {
  await nc?.close();
});

const usage = { promptTokens: 3, completionTokens: 3, totalTokens: 6 };
const chunk = (seq: number, text: string, finish?: TokenChunk['finish']): TokenChunk => ({ seq, nodeId: 'node-a', tokens: [seq + 100], text, ...(finish ? { finish } : {}) });

/** Every chunk the relay yields, failing the test rather than waiting forever. */
async function drain(relay: TokenRelay): Promise<TokenChunk[]> {
  const timer = setTimeout(() => relay.close(), 10_000);
  const seen: TokenChunk[] = [];
  try {
    for await (const c of relay.chunks()) seen.push(c);
  } finally {
    clearTimeout(timer);
  }
  return seen;
}

describe('TokenRelay', () => {
  it('skips messages that are not chunks, and still relays the good ones in order to the end', async () => {
    const subject = tokenSubject(unique('relay'));
    const relay = await TokenRelay.open(js, subject);
    // Anyone who can publish to NATS can put these on a request's subject.
    await js.publish(subject, JSON.stringify(chunk(0, 'Once')));
    await js.publish(subject, 'this is not {json');
    await js.publish(subject, JSON.stringify({ seq: '1', tokens: 'nope', text: 7 }));
    await js.publish(subject, new Uint8Array());
    await js.publish(subject, JSON.stringify(chunk(1, ' upon')));
    await js.publish(subject, JSON.stringify(null));
    await js.publish(subject, JSON.stringify(chunk(2, ' a time', { reason: 'length', usage })));

    const seen = await drain(relay);
    expect(seen.map((c) => c.seq)).toEqual([0, 1, 2]);
    expect(seen.map((c) => c.text).join('')).toBe('Once upon a time');
    expect(seen.at(-1)?.finish).toEqual({ reason: 'length', usage });
    expect(relay.malformed).toBe(4);
    relay.close(); // already ended at the last chunk; closing again is harmless
  });

  it('ignores a repeated or a jumped sequence number', async () => {
    const subject = tokenSubject(unique('relay'));
    const relay = await TokenRelay.open(js, subject);
    await js.publish(subject, JSON.stringify(chunk(0, 'a')));
    await js.publish(subject, JSON.stringify(chunk(0, 'forged repeat')));
    await js.publish(subject, JSON.stringify(chunk(5, 'forged jump', { reason: 'stop', usage })));
    await js.publish(subject, JSON.stringify(chunk(1, 'b', { reason: 'stop', usage })));

    expect((await drain(relay)).map((c) => c.text)).toEqual(['a', 'b']);
    expect(relay.malformed).toBe(0);
  });

  it('ends when closed, though no last chunk ever came', async () => {
    const subject = tokenSubject(unique('relay'));
    const relay = await TokenRelay.open(js, subject);
    await js.publish(subject, JSON.stringify(chunk(0, 'a')));
    const seen: string[] = [];
    for await (const c of relay.chunks()) {
      seen.push(c.text);
      relay.close();
    }
    expect(seen).toEqual(['a']);
  });
});

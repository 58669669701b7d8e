/**
 * Reads one request's token chunks from JetStream for the gateway: in order, de-duplicated by
 * sequence number across a failover, validated (chunks come from untrusted nodes), ending at
 * the chunk that carries `finish`.
 */
import type { ConsumerMessages, JetStreamClient } from '@nats-io/jetstream';
import { z } from 'zod';
import { tokenStreamName, type TokenChunk } from '../domain/inference.ts';

const chunkSchema = z.object({
  seq: z.number().int().nonnegative(),
  nodeId: z.string().max(64),
  tokens: z.array(z.number().int().nonnegative()).max(65_536),
  text: z.string().max(1_048_576),
  finish: z
    .object({
      reason: z.enum(['stop', 'length']),
      usage: z.object({ promptTokens: z.number().int(), completionTokens: z.number().int(), totalTokens: z.number().int() }),
    })
    .optional(),
});

export class TokenRelay {
  private constructor(private readonly messages: ConsumerMessages) {}

  /** Subscribe before the workflow starts; the stream keeps chunks, so nothing is missed either way. */
  static async open(js: JetStreamClient, subject: string): Promise<TokenRelay> {
    // One subject as a string: nats-server 2.9 (Debian's) knows only the single filter_subject.
    const consumer = await js.consumers.get(tokenStreamName, { filter_subjects: subject });
    return new TokenRelay(await consumer.consume());
  }

  async *chunks(): AsyncGenerator<TokenChunk> {
    let next = 0;
    for await (const message of this.messages) {
      const parsed = chunkSchema.safeParse(message.json());
      if (!parsed.success || parsed.data.seq < next) continue; // garbage, or already relayed
      if (parsed.data.seq > next) continue; // the fencing publisher never leaves gaps; ignore a forged jump
      next++;
      yield parsed.data;
      if (parsed.data.finish) return;
    }
  }

  close(): void {
    this.messages.stop();
  }
}

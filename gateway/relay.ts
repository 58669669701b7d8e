/**
 * Reads one request's token chunks from JetStream for the gateway: in order, de-duplicated by
 * sequence number across a failover, validated (chunks come from untrusted nodes), ending at
 * the chunk that carries `finish`.
 */
import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { tokenStreamName, type TokenChunk } from '../domain/inference.ts';
import { tokenChunkSchema as chunkSchema } from '../domain/inference-schema.ts';


/** The chunk in a message, or undefined for anything that is not one (not JSON, wrong shape). */
function parseChunk(message: JsMsg): TokenChunk | undefined {
  let data: unknown;
  try {
    data = message.json();
  } catch {
    return undefined;
  }
  const parsed = chunkSchema.safeParse(data);
  return parsed.success ? parsed.data : undefined;
}

export class TokenRelay {
  private dropped = 0;

  private constructor(private readonly messages: ConsumerMessages) {}

  /** Subscribe before the workflow starts; the stream keeps chunks, so nothing is missed either way. */
  static async open(js: JetStreamClient, subject: string): Promise<TokenRelay> {
    // One subject as a string: nats-server 2.9 (Debian's) knows only the single filter_subject.
    const consumer = await js.consumers.get(tokenStreamName, { filter_subjects: subject });
    return new TokenRelay(await consumer.consume());
  }

  /** Messages skipped as not a chunk at all; anyone who can publish to NATS can send them. */
  get malformed(): number {
    return this.dropped;
  }

  /** Never throws on a message's content: the caller has already sent response headers. */
  async *chunks(): AsyncGenerator<TokenChunk> {
    let next = 0;
    for await (const message of this.messages) {
      const chunk = parseChunk(message);
      if (!chunk) {
        this.dropped++;
        continue;
      }
      if (chunk.seq < next) continue; // already relayed
      if (chunk.seq > next) continue; // the fencing publisher never leaves gaps; ignore a forged jump
      next++;
      yield chunk;
      if (chunk.finish) return;
    }
  }

  /** Ends `chunks()`; safe to call more than once. */
  close(): void {
    this.messages.stop();
  }
}

import type { NatsConnection } from '@nats-io/transport-node';
import type { Db } from 'mongodb';
import { getLlama, LlamaCompletion } from 'node-llama-cpp';
import type { PublicClient } from 'viem';
import { store } from '../store/index.ts';

export interface SmokeDeps {
  db: Db;
  nats: NatsConnection;
  chain: PublicClient;
  modelPath: string;
  natsSubject: string;
}

export interface SmokeReport {
  text: string;
  tokens: number;
  mongoId: string;
  natsSubject: string;
  blockNumber: string;
}

export function createSmokeActivities(deps: SmokeDeps) {
  return {
    async smokeCheck(input: { prompt: string; maxTokens: number }): Promise<SmokeReport> {
      const llama = await getLlama({ gpu: false });
      const model = await llama.loadModel({ modelPath: deps.modelPath });
      try {
        const context = await model.createContext({ contextSize: 256 });
        const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
        const text = await completion.generateCompletion(input.prompt, { maxTokens: input.maxTokens, temperature: 0 });
        const tokens = model.tokenize(text).length;
        const blockNumber = await deps.chain.getBlockNumber();
        const { insertedId } = await store(deps.db).smoke.insertOne({ prompt: input.prompt, text, tokens, at: new Date() });
        deps.nats.publish(deps.natsSubject, JSON.stringify({ text, tokens }));
        await deps.nats.flush();
        return { text, tokens, mongoId: insertedId.toHexString(), natsSubject: deps.natsSubject, blockNumber: blockNumber.toString() };
      } finally {
        await model.dispose();
      }
    },
  };
}

export type SmokeActivities = ReturnType<typeof createSmokeActivities>;

/**
 * Test-only misbehaviour, as a wrapper around a node's engines: what the network's failover and
 * verification must catch. Installed only by the test entry of gitblock-node
 * (test/faulty-node.ts, `--test-faults <spec>`); production code knows nothing of it.
 */
import { join } from 'node:path';
import type { Llama } from 'node-llama-cpp';
import type { GenerateRequest, GenerateResult, InferenceEngine } from '../domain/engine.ts';
import type { Sampling, ToolSpec, ChatMessage } from '../domain/inference.ts';
import { generateImpostorModel } from '../models/fixture/tiny-llama.ts';
import { ModelEngine } from '../workers/node/engine.ts';
import type { ServedEngines } from '../workers/node/node.ts';

/** Each at a rate (share of requests), except the delay. */
export interface Faults {
  /** Delay after each token, ms: makes generations long enough to kill a node mid-answer. */
  tokenDelayMs?: number;
  /** Answers with (near) random tokens: sampled from a flattened distribution. */
  random?: number;
  /** Cuts the answer short and claims it ended by itself. */
  truncate?: number;
  /** Answers from another model while claiming this one. */
  impostor?: number;
  /** Stops producing tokens after a few, holding the request until cancelled. */
  stall?: number;
}

/** `slow:<ms>,random:<rate>,truncate:<rate>,impostor:<rate>,stall:<rate>`. */
export function parseFaults(spec: string): Faults {
  const faults: Faults = {};
  for (const part of spec.split(',')) {
    const [kind, value = ''] = part.split(':');
    if (kind === 'slow' && /^\d+$/.test(value) && Number(value) <= 10_000) faults.tokenDelayMs = Number(value);
    else if ((kind === 'random' || kind === 'truncate' || kind === 'impostor' || kind === 'stall') && /^(0(\.\d+)?|1(\.0+)?)$/.test(value)) faults[kind] = Number(value);
    else throw new Error(`--test-faults ${spec}: unknown fault '${part}' (known: slow:<ms>, random|truncate|impostor|stall:<rate 0..1>)`);
  }
  return faults;
}

type Fault = 'random' | 'truncate' | 'impostor' | 'stall';

/** The first fault that fires for this request, if any. */
function drawFault(faults: Faults): Fault | undefined {
  const draw = Math.random();
  let edge = 0;
  for (const [kind, rate] of [['random', faults.random], ['truncate', faults.truncate], ['impostor', faults.impostor], ['stall', faults.stall]] as const) {
    edge += rate ?? 0;
    if (draw < edge) return kind;
  }
  return undefined;
}

/** An engine that answers as `inner` does, except when a fault fires; verification it leaves honest. */
export class FaultyEngine implements InferenceEngine {
  constructor(
    private readonly inner: InferenceEngine,
    private readonly faults: Faults,
    /** Same vocabulary, other weights: "a different model" served under this one's name and hash. */
    private readonly impostor?: InferenceEngine,
  ) {}

  get modelId(): string {
    return this.inner.modelId;
  }
  get modelHash(): string {
    return this.inner.modelHash;
  }
  get contextSize(): number {
    return this.inner.contextSize;
  }
  get toolCallMarker(): string {
    return this.inner.toolCallMarker;
  }
  renderChat(messages: readonly ChatMessage[], tools?: readonly ToolSpec[]): ReturnType<InferenceEngine['renderChat']> {
    return this.inner.renderChat(messages, tools);
  }
  renderPrompt(prompt: string): ReturnType<InferenceEngine['renderPrompt']> {
    return this.inner.renderPrompt(prompt);
  }
  parseToolCalls(text: string, tools: readonly ToolSpec[]): ReturnType<InferenceEngine['parseToolCalls']> {
    return this.inner.parseToolCalls(text, tools);
  }
  detokenize(...args: Parameters<InferenceEngine['detokenize']>): string {
    return this.inner.detokenize(...args);
  }
  logprobsOf(...args: Parameters<InferenceEngine['logprobsOf']>): ReturnType<InferenceEngine['logprobsOf']> {
    return this.inner.logprobsOf(...args);
  }
  score(...args: Parameters<InferenceEngine['score']>): ReturnType<InferenceEngine['score']> {
    return this.inner.score(...args);
  }

  async generate(request: GenerateRequest): Promise<GenerateResult> {
    const fault = drawFault(this.faults);
    if (fault === 'truncate') {
      const maxTokens = Math.max(1, Math.floor(request.sampling.maxTokens * (0.2 + 0.4 * Math.random())));
      const cut = await this.inner.generate({ ...request, sampling: { ...request.sampling, maxTokens } });
      return { ...cut, finishReason: 'stop' };
    }
    if (fault === 'impostor' && this.impostor) return this.impostor.generate(request);
    const sampling: Sampling = fault === 'random' ? { ...request.sampling, temperature: 5, topK: 0, topP: 1 } : request.sampling;
    if (fault === 'stall') {
      // Holds the request after three answer tokens (a continued answer's included) until it is cancelled.
      let tokens = request.prefixTokens?.length ?? 0;
      const held = new Promise<void>((resolve) => request.signal?.addEventListener('abort', () => resolve()));
      return this.inner.generate({
        ...request,
        onToken: (token, text) => {
          tokens++;
          request.onToken?.(token, text);
        },
        afterToken: () => (tokens >= 3 ? held : Promise.resolve()),
      });
    }
    const delay = this.faults.tokenDelayMs;
    return this.inner.generate({ ...request, sampling, ...(delay ? { afterToken: () => new Promise<void>((r) => setTimeout(r, delay)) } : {}) });
  }
}

/** Wraps every engine of a node; loads the impostor model beside the first when that fault is on. */
export async function withFaults(
  faults: Faults,
  engines: ReadonlyMap<string, ModelEngine>,
  context: { llama: Llama; modelDir: string; maxParallel: number; threads: number },
): Promise<ServedEngines> {
  let impostor: ModelEngine | undefined;
  const first = [...engines.values()][0];
  if (faults.impostor && first) {
    const fake = await generateImpostorModel(join(context.modelDir, 'gitblock-tiny-impostor.gguf'));
    impostor = await ModelEngine.load(context.llama, { modelId: first.modelId, modelPath: fake.path, contextSize: first.contextSize, sequences: context.maxParallel, threads: context.threads });
  }
  return {
    engines: new Map([...engines].map(([id, engine]) => [id, new FaultyEngine(engine, faults, engine === first ? impostor : undefined)])),
    async dispose() {
      await impostor?.[Symbol.asyncDispose]();
    },
  };
}

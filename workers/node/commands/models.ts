import { listModels } from '../../../models/catalog.ts';
import { detectCompute, type GpuChoice } from '../gpu.ts';

const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

/**
 * What `start --max-parallel n` needs for a model at its default context: the weights once,
 * the KV cache once per sequence (the catalog's memoryBytes is the weights plus one).
 */
export function memoryFor(model: { sizeBytes: number; memoryBytes: number }, maxParallel: number): number {
  return model.sizeBytes + (model.memoryBytes - model.sizeBytes) * maxParallel;
}

export async function modelsCommand(flags: { gpu: GpuChoice; json?: boolean; maxParallel?: string }): Promise<void> {
  const maxParallel = Number(flags.maxParallel ?? 4);
  if (!Number.isSafeInteger(maxParallel) || maxParallel < 1 || maxParallel > 256) throw new Error(`--max-parallel: a whole number from 1 to 256, got ${flags.maxParallel}`);
  const compute = await detectCompute(flags.gpu);
  const rows = listModels().map((m) => ({
    id: m.id,
    name: m.displayName,
    size: m.sizeBytes,
    memory: memoryFor(m, maxParallel),
    context: m.contextLength,
    rewardWeight: m.rewardWeight,
    fits: memoryFor(m, maxParallel) <= compute.freeMemoryBytes,
  }));
  await compute.llama.dispose();
  if (flags.json) {
    console.log(JSON.stringify({ backend: compute.backend, freeMemoryBytes: compute.freeMemoryBytes, maxParallel, models: rows }, null, 2));
    return;
  }
  console.log(`${compute.backend}${compute.devices.length ? ` (${compute.devices.join(', ')})` : ''}: ${gib(compute.freeMemoryBytes)} free; memory for --max-parallel ${maxParallel} at the default context\n`);
  console.log(['model'.padEnd(16), 'name'.padEnd(30), 'download'.padStart(10), 'memory'.padStart(10), 'context'.padStart(8), '  fits'].join(' '));
  for (const r of rows) {
    console.log(
      [r.id.padEnd(16), r.name.padEnd(30), gib(r.size).padStart(10), gib(r.memory).padStart(10), String(r.context).padStart(8), r.fits ? '  yes' : '  no, too large'].join(' '),
    );
  }
}

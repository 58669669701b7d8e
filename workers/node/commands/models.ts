import { listModels } from '../../../models/catalog.ts';
import { detectCompute, type GpuChoice } from '../gpu.ts';

const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

export async function modelsCommand(flags: { gpu: GpuChoice; json?: boolean }): Promise<void> {
  const compute = await detectCompute(flags.gpu);
  const rows = listModels().map((m) => ({
    id: m.id,
    name: m.displayName,
    size: m.sizeBytes,
    memory: m.memoryBytes,
    context: m.contextLength,
    rewardWeight: m.rewardWeight,
    fits: m.memoryBytes <= compute.freeMemoryBytes,
  }));
  await compute.llama.dispose();
  if (flags.json) {
    console.log(JSON.stringify({ backend: compute.backend, freeMemoryBytes: compute.freeMemoryBytes, models: rows }, null, 2));
    return;
  }
  console.log(`${compute.backend}${compute.devices.length ? ` (${compute.devices.join(', ')})` : ''}: ${gib(compute.freeMemoryBytes)} free\n`);
  console.log(['model'.padEnd(16), 'name'.padEnd(30), 'download'.padStart(10), 'memory'.padStart(10), 'context'.padStart(8), '  fits'].join(' '));
  for (const r of rows) {
    console.log(
      [r.id.padEnd(16), r.name.padEnd(30), gib(r.size).padStart(10), gib(r.memory).padStart(10), String(r.context).padStart(8), r.fits ? '  yes' : '  no, too large'].join(' '),
    );
  }
}

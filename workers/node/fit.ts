/**
 * Whether a model fits before it is loaded, from the GGUF's own metadata (node-llama-cpp's
 * estimates for the weights and for a context of our size and sequence count). A model that
 * does not fit is refused with the numbers instead of being loaded into an out-of-memory crash.
 */
import { GgufInsights, readGgufFileInfo, type Llama } from 'node-llama-cpp';
import { BaseError } from '../../domain/errors.ts';

export interface FitPlan {
  modelId: string;
  weightsBytes: number;
  contextBytes: number;
  totalBytes: number;
  availableBytes: number;
  fits: boolean;
  contextSize: number;
  trainContextSize: number;
}

export class ModelDoesNotFitError extends BaseError<'MODEL_DOES_NOT_FIT'> {
  override name = 'ModelDoesNotFitError';
  constructor(readonly plans: FitPlan[]) {
    super(plans.map(describeMisfit).join('\n'), { code: 'MODEL_DOES_NOT_FIT' });
  }
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;

export function describeMisfit(plan: FitPlan): string {
  return (
    `${plan.modelId} does not fit: it needs ${gib(plan.totalBytes)} (weights ${gib(plan.weightsBytes)} + context ${gib(plan.contextBytes)} ` +
    `for ${plan.contextSize} tokens per sequence) but only ${gib(plan.availableBytes)} is available. ` +
    `Use a smaller model, a smaller --context-size or --max-parallel, or raise --max-memory.`
  );
}

export async function planFit(
  llama: Llama,
  model: { modelId: string; path: string; contextSize: number | undefined; sequences: number },
  availableBytes: number,
): Promise<FitPlan> {
  const info = await readGgufFileInfo(model.path);
  const insights = await GgufInsights.from(info, llama);
  const gpuLayers = llama.gpu === false ? 0 : insights.totalLayers;
  const contextSize = Math.min(model.contextSize ?? insights.trainContextSize ?? 4096, insights.trainContextSize ?? Infinity);
  const weights = await insights.estimateModelResourceRequirementsV2({ gpuLayers });
  const context = await insights.estimateContextResourceRequirementsV2({ contextSize, modelGpuLayers: gpuLayers, sequences: model.sequences });
  // On a GPU the binding limit is VRAM; on CPU everything lives in RAM.
  const pick = (r: { cpuRam: number; gpuVram: number }) => (llama.gpu === false ? r.cpuRam : r.gpuVram);
  const weightsBytes = pick(weights);
  const contextBytes = pick(context);
  const totalBytes = weightsBytes + contextBytes;
  return {
    modelId: model.modelId,
    weightsBytes,
    contextBytes,
    totalBytes,
    availableBytes,
    fits: totalBytes <= availableBytes,
    contextSize,
    trainContextSize: insights.trainContextSize ?? contextSize,
  };
}

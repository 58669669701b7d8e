/**
 * Which compute backend this machine can run, its devices and free memory, as node-llama-cpp
 * sees them. `auto` takes the best that works (CUDA, Vulkan, Metal, else CPU).
 */
import { freemem, totalmem } from 'node:os';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { codedError } from '../../domain/errors.ts';

export const gpuChoices = ['auto', 'cuda', 'vulkan', 'metal', 'cpu'] as const;
export type GpuChoice = (typeof gpuChoices)[number];
export type Backend = 'cuda' | 'vulkan' | 'metal' | 'cpu';

export interface ComputeInfo {
  llama: Llama;
  backend: Backend;
  devices: string[];
  /** Memory models and contexts are placed in: VRAM on a GPU, RAM on CPU. */
  freeMemoryBytes: number;
  totalMemoryBytes: number;
  cpuMathCores: number;
}

export class GpuUnavailableError extends codedError('GPU_UNAVAILABLE') {
  override name = 'GpuUnavailableError';
}

export async function memoryState(llama: Llama): Promise<{ free: number; total: number }> {
  if (llama.gpu === false) return { free: freemem(), total: totalmem() };
  const vram = await llama.getVramState();
  return { free: vram.free, total: vram.total };
}

export async function detectCompute(choice: GpuChoice): Promise<ComputeInfo> {
  let llama: Llama;
  try {
    // build 'never': a local build or a prebuilt binary, never a compile of llama.cpp at start.
    llama = await getLlama({ gpu: choice === 'cpu' ? false : choice, build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false });
  } catch (err) {
    throw new GpuUnavailableError(
      `--gpu ${choice}: node-llama-cpp has no working ${choice.toUpperCase()} backend on this machine (${(err as Error).message.split('\n')[0]}); use --gpu auto to take what works`,
    );
  }
  const backend: Backend = llama.gpu === false ? 'cpu' : llama.gpu;
  // node-llama-cpp may quietly take another backend than the one asked for (metal off macOS).
  if (choice !== 'auto' && backend !== choice) {
    await llama.dispose();
    throw new GpuUnavailableError(`--gpu ${choice}: node-llama-cpp loaded the ${backend} backend instead; this machine has no working ${choice.toUpperCase()} backend (use --gpu auto to take what works)`);
  }
  const devices = backend === 'cpu' ? [] : await llama.getGpuDeviceNames();
  const memory = await memoryState(llama);
  return { llama, backend, devices, freeMemoryBytes: memory.free, totalMemoryBytes: memory.total, cpuMathCores: llama.cpuMathCores };
}

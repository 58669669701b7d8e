import type { Endpoints } from '../stack/services.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The real stack started by test/global-setup.ts, on random ports. */
    stack: Endpoints;
    /** Absolute path of the generated tiny GGUF test model. */
    fixtureModelPath: string;
  }
}

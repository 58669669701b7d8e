/** What the global setup hands every test file through `inject(...)`. */
export interface StackEndpoints {
  /** host:port of the Temporal frontend. */
  temporalAddress: string;
  temporalNamespace: string;
  temporalUiUrl: string;
  mongodbUri: string;
  natsUrl: string;
  /** anvil's JSON-RPC URL (chain id 31337, the default test mnemonic's accounts funded). */
  rpcUrl: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackEndpoints;
    /** Absolute path of the generated tiny GGUF test model. */
    fixtureModelPath: string;
  }
}

import { redactNatsUrl } from '../connections/nats.ts';
import { natsCredentialsFile } from './credentials.ts';
import type { Stack } from './stack.ts';

export function printEndpoints(stack: Stack): void {
  const e = stack.endpoints;
  console.log(
    [
      'GitBlock local stack is up:',
      `  Temporal       ${e.temporalAddress}  (namespace ${e.temporalNamespace})`,
      `  Temporal UI    ${e.temporalUiUrl}`,
      `  MongoDB        ${e.mongodbUri}`,
      `  NATS           ${redactNatsUrl(e.natsUrl)}  (password in ${natsCredentialsFile(stack.dataDir)})`,
      `  Chain (anvil)  ${e.rpcUrl}  (chain id 31337)`,
      `  Logs           ${stack.logDir}`,
    ].join('\n'),
  );
}

/** Resolves on the first SIGINT or SIGTERM; a second one exits at once. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let seen = false;
    const handler = (signal: NodeJS.Signals) => {
      if (seen) process.exit(130);
      seen = true;
      resolve(signal);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}

/**
 * Runs one long-lived process (`npm run gateway`, `npm run edge`): starts it, and on
 * SIGINT/SIGTERM closes it and exits 0 (1 if closing fails); a second signal exits at once.
 * A failure to start prints one line, `<name>: <reason>`, and exits 1.
 */
export function runService(name: string, start: () => Promise<{ close(): Promise<void> }>): void {
  const fail = (what: string, err: unknown) => {
    process.stderr.write(`${name}: ${what}${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  };
  start().then((service) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) process.exit(1);
      stopping = true;
      console.log(`${signal}: closing...`);
      service.close().then(() => process.exit(0), (err: unknown) => fail('close failed: ', err));
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  }, (err: unknown) => fail('', err));
}

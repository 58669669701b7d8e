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

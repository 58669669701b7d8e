import type { Config } from '../../../config/env.ts';
import { startNode } from '../node.ts';
import { resolveStartOptions, type StartFlags } from '../options.ts';

export async function startCommand(flags: StartFlags, config: Config, cores: number): Promise<void> {
  const options = resolveStartOptions(flags, config, cores);
  const node = await startNode(options);
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`${signal} again: exiting now.`);
      process.exit(1);
    }
    stopping = true;
    console.log(`${signal}: no new requests; finishing ${node.server.inFlight} in flight (up to ${options.shutdownGraceMs / 1000} s)...`);
    node.stop().then(
      () => {
        console.log('Node offline. Bye.');
        process.exit(0);
      },
      (err: unknown) => {
        console.error(`shutdown failed: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A worker that dies on its own (e.g. Temporal unreachable for too long) ends the node.
  await node.server.done.catch((err: unknown) => {
    if (!stopping) throw err;
  });
  if (!stopping) throw new Error('the Temporal workers stopped unexpectedly');
}

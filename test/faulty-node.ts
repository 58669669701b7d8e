/**
 * gitblock-node with test faults: the real CLI, with `--test-faults <spec>` taken off the
 * command line and its engines served through FaultyEngine. test/node-process.ts runs this
 * entry when a test asks for faults; the installed bin never offers them.
 */
import { parseFaults, withFaults, type Faults } from './faulty-engine.ts';
import { serveEnginesThrough } from '../workers/node/node.ts';

const at = process.argv.indexOf('--test-faults');
let faults: Faults = {};
if (at >= 0) {
  const [, spec = ''] = process.argv.splice(at, 2);
  try {
    faults = parseFaults(spec);
  } catch (err) {
    // The CLI's own way of refusing an argument: one line, exit code 1.
    console.error((err as Error).message);
    process.exit(1);
  }
}
serveEnginesThrough(async (engines, context) => {
  context.log(`TEST FAULTS ON: ${JSON.stringify(faults)}`);
  return withFaults(faults, engines, context);
});
await import('../workers/node/cli.ts');

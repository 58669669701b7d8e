/**
 * One real stack for the whole test run, on random ports in a temporary folder, so two runs
 * never collide. If a service dies mid-run, the run is cancelled and fails with a message
 * naming that service, instead of tests hanging on a dead connection.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../config/env.ts';
import { generateFixtureModel } from '../models/fixture/tiny-llama.ts';
import type { ServiceError } from '../stack/process.ts';
import { startStack } from '../stack/stack.ts';

export default async function setup(project: TestProject) {
  const config = loadConfig();
  const dataDir = mkdtempSync(join(tmpdir(), 'gitblock-test-'));
  const started = Date.now();
  const stack = await startStack({
    dataDir,
    ports: 'random',
    mongodbUri: config.MONGODB_URI,
    say: (line) => console.log(`[stack] ${line}`),
  });
  console.log(`[stack] up in ${Date.now() - started} ms; logs in ${stack.logDir}`);

  let failure: ServiceError | undefined;
  stack.onServiceFailure((error) => {
    if (failure) return;
    failure = error;
    console.error(`\n[stack] ${error.message}\n[stack] cancelling the test run: service '${error.service}' is down`);
    void project.vitest.cancelCurrentRun('test-failure');
  });

  const fixture = await generateFixtureModel(resolve(config.GITBLOCK_MODEL_DIR, 'gitblock-tiny.gguf'));
  project.provide('stack', stack.endpoints);
  project.provide('fixtureModelPath', fixture.path);

  return async () => {
    await stack.stop();
    if (failure) {
      // Keep the logs of a failed run for a look; a clean run leaves nothing behind.
      throw new Error(`The '${failure.service}' service died during the test run; logs kept in ${stack.logDir}`);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
}

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/env.ts';
import { OptionsError, resolveStartOptions } from './options.ts';

// Each test builds its config from an explicit env object, never from process.env, so the
// machine's own GITBLOCK_EDGE cannot decide the outcome.
const home = mkdtempSync(join(tmpdir(), 'gbn-options-'));
const env = (vars: Record<string, string> = {}) => parseConfig({ GITBLOCK_NODE_HOME: home, ...vars });

function configFile(settings: Record<string, unknown>): string {
  const path = join(mkdtempSync(join(tmpdir(), 'gbn-options-file-')), 'node.json');
  writeFileSync(path, JSON.stringify(settings));
  return path;
}

const fromFile = {
  models: ['smollm2-135m'],
  edge: 'edge.example:7443',
  modelDir: '/srv/models',
  contextSize: 2048,
  threads: 3,
  maxMemory: '6GiB',
  shutdownGraceMs: 5_000,
};

function optionsError(run: () => unknown): OptionsError {
  try {
    run();
  } catch (err) {
    if (err instanceof OptionsError) return err;
    throw err;
  }
  throw new Error('expected an OptionsError');
}

describe('resolveStartOptions: flag > environment > file > default', () => {
  it('takes the file’s values for settings the environment does not set', () => {
    const options = resolveStartOptions({ config: configFile(fromFile) }, env(), 8);
    expect(options).toMatchObject({
      models: ['smollm2-135m'],
      edge: 'edge.example:7443',
      modelDir: '/srv/models',
      contextSize: 2048,
      threads: 3,
      maxMemory: 6 * 2 ** 30,
      shutdownGraceMs: 5_000,
    });
  });

  it('finds the file through GITBLOCK_NODE_CONFIG, and treats empty variables as unset', () => {
    const options = resolveStartOptions({}, env({ GITBLOCK_NODE_CONFIG: configFile(fromFile), GITBLOCK_EDGE: '' }), 8);
    expect(options.edge).toBe('edge.example:7443');
  });

  it('lets a variable set in the environment beat the file, even one equal to the default', () => {
    const config = env({
      GITBLOCK_EDGE: '127.0.0.1:7443',
      GITBLOCK_MODEL_DIR: '/env/models',
      GITBLOCK_NODE_CONTEXT_SIZE: '4096',
      GITBLOCK_NODE_THREADS: '5',
      GITBLOCK_NODE_MAX_MEMORY: '512MiB',
      GITBLOCK_NODE_SHUTDOWN_GRACE: '12',
    });
    const options = resolveStartOptions({ config: configFile(fromFile) }, config, 8);
    expect(options).toMatchObject({
      edge: '127.0.0.1:7443',
      modelDir: '/env/models',
      contextSize: 4096,
      threads: 5,
      maxMemory: 512 * 2 ** 20,
      shutdownGraceMs: 12_000,
    });
  });

  it('lets a flag beat both the environment and the file', () => {
    const config = env({
      GITBLOCK_EDGE: 'edge.env:7443',
      GITBLOCK_MODEL_DIR: '/env/models',
      GITBLOCK_NODE_CONTEXT_SIZE: '4096',
      GITBLOCK_NODE_THREADS: '5',
      GITBLOCK_NODE_MAX_MEMORY: '512MiB',
      GITBLOCK_NODE_SHUTDOWN_GRACE: '12',
    });
    const flags = {
      config: configFile(fromFile),
      edge: 'edge.flag:7443',
      modelDir: '/flag/models',
      contextSize: '8192',
      threads: '1',
      maxMemory: '2GiB',
      shutdownGrace: '0',
    };
    expect(resolveStartOptions(flags, config, 8)).toMatchObject({
      edge: 'edge.flag:7443',
      modelDir: '/flag/models',
      contextSize: 8192,
      threads: 1,
      maxMemory: 2 * 2 ** 30,
      shutdownGraceMs: 0,
    });
  });

  it('falls back to the defaults when nothing sets a value', () => {
    const config = env();
    const options = resolveStartOptions({ models: 'smollm2-135m' }, config, 8);
    expect(options).toMatchObject({
      gpu: 'auto',
      edge: '127.0.0.1:7443',
      modelDir: config.GITBLOCK_MODEL_DIR,
      maxParallel: 4,
      threads: 7,
      keyFile: join(home, 'operator.key'),
      shutdownGraceMs: 30_000,
      offline: false,
    });
    expect(options.contextSize).toBeUndefined();
    expect(options.maxMemory).toBeUndefined();
  });

  it('names the flag that fixes a bad value, in one line', () => {
    for (const [settings, message] of [
      [{ edge: 'edge.example' }, /^--edge: host:port/],
      [{ edge: 'http://edge.example:7443' }, /^--edge: host:port/],
      [{ threads: 'many' }, /^--threads: /],
      [{ maxMemory: 'lots' }, /^--max-memory: a size such as 512MiB or 8GiB/],
      [{ maxMemory: 0 }, /^--max-memory: a size such as 512MiB or 8GiB/],
      [{ offline: 'yes' }, /^--offline: /],
      [{ contextSize: 16 }, /^--context-size: /],
      [{ shutdownGraceMs: -1 }, /^--shutdown-grace: /],
    ] as const) {
      const error = optionsError(() => resolveStartOptions({ config: configFile({ ...fromFile, ...settings }) }, env(), 8));
      expect(error.message, JSON.stringify(settings)).toMatch(message);
      expect(error.message.split('\n')).toHaveLength(1);
    }
  });

  it('names the flag for a bad value from the environment too', () => {
    for (const [vars, message] of [
      [{ GITBLOCK_NODE_THREADS: 'many' }, /^--threads: /],
      [{ GITBLOCK_NODE_CONTEXT_SIZE: '4k' }, /^--context-size: /],
      [{ GITBLOCK_NODE_MAX_MEMORY: 'lots' }, /^--max-memory: a size such as 512MiB or 8GiB/],
      [{ GITBLOCK_NODE_SHUTDOWN_GRACE: 'soon' }, /^--shutdown-grace: /],
    ] as const) {
      const error = optionsError(() => resolveStartOptions({ models: 'smollm2-135m' }, env(vars), 8));
      expect(error.message, JSON.stringify(vars)).toMatch(message);
      expect(error.message.split('\n')).toHaveLength(1);
    }
  });
});

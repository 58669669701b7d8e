/**
 * The lint rules that replace hand-written checks must actually fire: a workflow with a floating
 * promise or a Node import, and a domain module reading the clock, fail `npm run lint`. Linted
 * through ESLint's Node API with the repository's own config, on sample text that never touches
 * the disk (the path only decides which config blocks apply).
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const samples = ['workflows/lint-sample.ts', 'domain/lint-sample.ts'];
let eslint: ESLint;
beforeAll(() => {
  // The samples exist only as text: the project service gives them a project of their own,
  // with the repository's compiler options.
  eslint = new ESLint({
    cwd: root,
    overrideConfig: {
      files: samples,
      languageOptions: { parserOptions: { projectService: { allowDefaultProject: samples, defaultProject: 'tsconfig.json' } } },
    },
  });
});

async function lint(path: string, source: string): Promise<{ rule: string | null; line: number }[]> {
  const [result] = await eslint.lintText(source, { filePath: join(root, path) });
  expect(result?.messages.filter((m) => m.fatal)).toEqual([]);
  return (result?.messages ?? []).map((m) => ({ rule: m.ruleId, line: m.line }));
}

const badWorkflow = `import { readFileSync } from 'node:fs';
import { sleep } from '@temporalio/workflow';

export async function sampleWorkflow(): Promise<string> {
  sleep(1000);
  return readFileSync('/etc/hostname', 'utf8');
}
`;

describe('lint rules', () => {
  it('fail a workflow with a floating promise and a node:fs import', async () => {
    const messages = await lint('workflows/lint-sample.ts', badWorkflow);
    expect(messages).toEqual(
      expect.arrayContaining([
        { rule: '@typescript-eslint/no-restricted-imports', line: 1 },
        { rule: '@typescript-eslint/no-floating-promises', line: 5 },
      ]),
    );
  }, 180_000);

  it('fail a workflow importing a bare Node built-in, a Temporal client or activity code', async () => {
    const source = `import { createHash } from 'crypto';
import { Client } from '@temporalio/client';
import { createInferActivities } from '../activities/infer.ts';
export const names = [createHash.name, Client.name, createInferActivities.name];
`;
    const lines = (await lint('workflows/lint-sample.ts', source)).filter((m) => m.rule === '@typescript-eslint/no-restricted-imports').map((m) => m.line);
    expect(new Set(lines)).toEqual(new Set([1, 2, 3]));
  }, 180_000);

  it('pass a workflow that imports only the SDK, domain/, temporal.config.ts and activity types', async () => {
    const source = `import { proxyActivities } from '@temporalio/workflow';
import type { InferActivities } from '../activities/infer.ts';
import { inferErrors } from '../domain/inference.ts';
import { timeouts } from '../temporal.config.ts';

const { infer } = proxyActivities<InferActivities>({ startToCloseTimeout: timeouts.inferStartToClose });

export async function sampleWorkflow(): Promise<string> {
  await infer(undefined as never);
  return inferErrors.badInput;
}
`;
    expect(await lint('workflows/lint-sample.ts', source)).toEqual([]);
  }, 180_000);

  it('fail a pure domain module that reads the clock, draws randomly or imports I/O code', async () => {
    const source = `import { connectMongo } from '../connections/mongo.ts';
export const now = (): number => Date.now() + Math.random() + new Date().getTime();
export const connect = connectMongo;
`;
    const rules = (await lint('domain/lint-sample.ts', source)).map((m) => m.rule);
    expect(rules).toEqual(expect.arrayContaining(['@typescript-eslint/no-restricted-imports', 'no-restricted-properties', 'no-restricted-syntax']));
    expect(rules.filter((r) => r === 'no-restricted-properties')).toHaveLength(2);
  }, 180_000);
});

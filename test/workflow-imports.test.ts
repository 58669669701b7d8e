/**
 * The determinism rule as a check: workflow code imports only @temporalio/workflow, types,
 * temporal.config.ts, other workflow files and the pure modules in domain/, and never reads
 * the clock, randomness or the environment except through the SDK.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const workflowFiles = sourceFiles(join(root, 'workflows'));
const domainFiles = sourceFiles(join(root, 'domain'));

function valueImports(source: string): string[] {
  const specifiers: string[] = [];
  for (const match of source.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
    if (!match[2]) specifiers.push(match[3]!);
  }
  for (const match of source.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) specifiers.push(match[1]!);
  for (const match of source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) specifiers.push(match[1]!);
  return specifiers;
}

function allowed(file: string, specifier: string, packages: string[]): boolean {
  if (!specifier.startsWith('.')) return packages.includes(specifier);
  const target = relative(root, resolve(dirname(file), specifier));
  return target === 'temporal.config.ts' || target.startsWith('workflows/') || target.startsWith('domain/');
}

const forbidden = [/\bprocess\./, /\bsetTimeout\(/, /\bsetInterval\(/];
// Inside the workflow sandbox Date and Math.random are the SDK's deterministic clock and
// seeded generator (the seed is the server's: nodes cannot predict a spot check); pure domain
// code takes times and draws as arguments instead.
const forbiddenInDomain = [...forbidden, /\bDate\.now\(/, /\bnew Date\(\)/, /\bMath\.random\(/];

/** Source without comments, so a comment that mentions Date.now() is not a violation. */
function code(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

describe('workflow determinism rules', () => {
  it('finds workflow files to check', () => {
    expect(workflowFiles.length).toBeGreaterThan(0);
  });

  it.each([...workflowFiles, ...domainFiles].map((f) => [relative(root, f), f]))('%s imports only deterministic modules', (_name, file) => {
    const source = readFileSync(file, 'utf8');
    // zod and viem's encoding helpers are pure: domain modules may use them (never a viem client).
    const packages = file.includes('/domain/') ? ['zod', 'viem'] : ['@temporalio/workflow', 'zod'];
    const bad = valueImports(source).filter((s) => !allowed(file, s, packages));
    expect(bad, `non-deterministic imports in ${relative(root, file)}`).toEqual([]);
    for (const pattern of file.includes('/domain/') ? forbiddenInDomain : forbidden) {
      expect(code(source), `${relative(root, file)} uses ${pattern}`).not.toMatch(pattern);
    }
  });
});

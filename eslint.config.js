// @ts-check
/**
 * Lint, with type information (typescript-eslint's project service reads tsconfig.json).
 *
 * Three things matter most here, beyond the recommended sets:
 * - a promise nobody awaits or handles is an error (a lost rejection crashes the process or
 *   silently drops a write), as is one passed where a callback's result is ignored;
 * - workflow code is deterministic: it imports only @temporalio/workflow, types,
 *   temporal.config.ts and the pure domain/ modules (the Temporal samples' lint override);
 *   domain/ and temporal.config.ts stay pure so that workflows may import them;
 * - no function longer than a screen (80 lines), outside tests and generated code.
 */
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const tsFiles = ['**/*.ts', '**/*.mts'];
const testFiles = ['**/*.test.ts', 'test/**', 'bench/**'];

const nodeBuiltins = {
  regex: `^(node:.*|${builtinModules.filter((name) => !name.startsWith('_')).join('|').replaceAll('/', '\\/')})(\\/.*)?$`,
  message: 'Node built-ins do I/O or read the host: not allowed in deterministic code.',
};
const ioPackages = {
  group: [
    'mongodb', 'nats', '@nats-io/*', 'fastify', 'fastify-*', '@fastify/*', 'node-llama-cpp', 'node-llama-cpp/*',
    '@grpc/*', 'prom-client', 'commander', 'solc', '@foundry-rs/*', 'tsx', 'openai',
  ],
  message: 'An I/O module: do the I/O in an activity.',
};
const ioFolders = {
  regex: '(^|\\/)(activities|gateway|workers|connections|edge|stack|config|contracts|bench|scripts|test)(\\/|$)',
  message: 'Only types may come from I/O code (activities, gateway, workers, connections, edge, stack...).',
  allowTypeImports: true,
};

/** Restricted globals, properties and syntax shared by workflows/ and the pure modules. */
const noHostAccess = {
  'no-restricted-globals': ['error',
    { name: 'process', message: 'Configuration comes in as an argument; workflow and domain code never read the host.' },
    { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow, or take the time as an argument.' },
    { name: 'setInterval', message: 'Use a workflow timer loop, or take the time as an argument.' },
  ],
};

export default defineConfig(
  globalIgnores(['**/node_modules/', '**/.data/', '.cache/', 'dist/', 'contracts/artifacts/', '**/.venv/']),
  js.configs.recommended,
  {
    files: tsFiles,
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: globals.node,
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // tsc's noUnusedLocals/noUnusedParameters already report these, with the same options.
      '@typescript-eslint/no-unused-vars': 'off',
      // An async function without await is how this code implements a Promise-returning
      // interface (Fastify and gRPC handlers, activities, fakes): a sync throw becomes a rejection.
      '@typescript-eslint/require-await': 'off',
      // A variable a closure reads before its one assignment (a connection made after the
      // callback that uses it) cannot be const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Tests read untyped JSON answers and pass methods to expect(); the `any` checks and
    // unbound-method only add casts there, and a wrong shape fails the assertion anyway.
    files: testFiles,
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
  {
    // The status pages' one browser script; uPlot is loaded before it by a <script> tag.
    files: ['gateway/status/assets/**/*.js'],
    languageOptions: { globals: { ...globals.browser, uPlot: 'readonly' } },
  },
  {
    files: tsFiles,
    ignores: testFiles,
    rules: {
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    // Workflow code: replayed from history, so it must do the same thing every time.
    files: ['workflows/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      ...noHostAccess,
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [
          nodeBuiltins,
          {
            group: ['@temporalio/*', '!@temporalio/workflow', '!@temporalio/common'],
            message: 'Workflow code uses only @temporalio/workflow (types from @temporalio/common).',
            allowTypeImports: true,
          },
          { group: ['@temporalio/common'], message: 'Import it from @temporalio/workflow, which re-exports it.', allowTypeImports: true },
          { ...ioPackages, group: [...ioPackages.group, 'viem', 'viem/*', 'zod'] },
          ioFolders,
          {
            regex: '^(?!@temporalio\\/workflow$|\\.\\/|\\.\\.\\/domain\\/|\\.\\.\\/temporal\\.config\\.ts$)',
            message: 'Workflow code imports only @temporalio/workflow, temporal.config.ts, domain/ and other workflows.',
            allowTypeImports: true,
          },
        ],
      }],
    },
  },
  {
    // Pure modules that workflow code imports: no I/O, no clock, no randomness.
    files: ['domain/**/*.ts', 'temporal.config.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      ...noHostAccess,
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'Take the time as an argument.' },
        { object: 'Math', property: 'random', message: 'Take the draw as an argument.' },
      ],
      'no-restricted-syntax': ['error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'Take the time as an argument.' },
      ],
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [
          nodeBuiltins,
          {
            group: ['@temporalio/*', '!@temporalio/common'],
            message: 'Pure modules do not touch Temporal (types from @temporalio/common only).',
            allowTypeImports: true,
          },
          { group: ['@temporalio/common'], message: 'Only types from @temporalio/common.', allowTypeImports: true },
          // viem's encoding and address helpers are pure; a client or transport is not.
          // Types are erased: domain/engine.ts names node-llama-cpp's Token.
          { ...ioPackages, group: [...ioPackages.group, 'viem/*', '!viem/utils'], allowTypeImports: true },
          { ...ioFolders, regex: ioFolders.regex.replace('(activities|', '(workflows|activities|') },
        ],
      }],
    },
  },
);

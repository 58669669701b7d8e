/**
 * Compiles `contracts/src/*.sol` with the npm `solc` package (solc-js, pinned by package-lock)
 * and writes one TypeScript module per deployable contract to `contracts/artifacts/`, e.g.
 * `GBT.ts` exporting `gbtAbi` (`as const`, so viem infers function names and argument types)
 * and `gbtBytecode`.
 *
 *   npx tsx contracts/compile.ts          # (re)write the artifacts
 *   npx tsx contracts/compile.ts --check  # exit 1 if the committed artifacts are stale
 *
 * The output is deterministic: the compiler version is pinned, sources are named by their
 * repo-relative path (the names end up in the metadata hash embedded in the bytecode, so an
 * absolute path would make the bytecode differ between machines), inputs are listed in sorted
 * order and the emitted text depends only on solc's output.
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import solc from 'solc';
import { codedError } from '../domain/errors.ts';

/** The solc-js version the committed artifacts were built with (package.json pins it). */
export const SOLC_VERSION = '0.8.37';

/**
 * Target EVM. anvil 1.7 runs the newest hardfork by default (it reports "Bpo1", after Osaka),
 * and solc 0.8.37 defaults to "osaka". We pin "cancun" instead: it is a subset of both, the
 * bytecode then avoids Osaka-only opcodes (CLZ), and the same artifacts deploy unchanged to
 * chains that have not upgraded past Cancun. OpenZeppelin 5 needs at least Cancun for MCOPY.
 */
export const EVM_VERSION = 'cancun';

/** Optimizer runs: tuned for cheap calls (claims happen far more often than deployments). */
export const OPTIMIZER_RUNS = 10_000;

/** The contracts that get an artifact module, by contract name (each lives in `src/<Name>.sol`). */
export const ARTIFACT_CONTRACTS = ['GBT', 'RewardsDistributor', 'TeamVesting', 'Airdrop'] as const;
export type ArtifactContract = (typeof ARTIFACT_CONTRACTS)[number];

const CONTRACTS_DIR = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(CONTRACTS_DIR, '..');
const SRC_DIR = join(CONTRACTS_DIR, 'src');
/** Where the generated modules go. */
export const ARTIFACTS_DIR = join(CONTRACTS_DIR, 'artifacts');

/** One compiled contract. */
export interface CompiledContract {
  name: ArtifactContract;
  /** Repo-relative source unit name, e.g. `contracts/src/GBT.sol`. */
  source: string;
  abi: readonly unknown[];
  /** Creation bytecode, 0x-prefixed. */
  bytecode: `0x${string}`;
}

/** The result of one compile: contracts plus any compiler warnings (already formatted). */
export interface CompileResult {
  contracts: CompiledContract[];
  warnings: string[];
}

/** Thrown when solc reports errors; `message` holds every formatted compiler error. */
export class SolidityCompileError extends codedError('SOLIDITY_COMPILE_FAILED') {
  override readonly name = 'SolidityCompileError';
}

// --- the slice of solc's standard JSON we use -------------------------------------------------

interface SolcInput {
  language: 'Solidity';
  sources: Record<string, { content: string }>;
  settings: {
    optimizer: { enabled: boolean; runs: number };
    evmVersion: string;
    outputSelection: Record<string, Record<string, string[]>>;
  };
}

interface SolcError {
  severity: 'error' | 'warning' | 'info';
  formattedMessage?: string;
  message: string;
}

interface SolcOutput {
  errors?: SolcError[];
  contracts?: Record<string, Record<string, { abi?: unknown[]; evm?: { bytecode?: { object?: string } } }>>;
}

type ImportResult = { contents: string } | { error: string };

interface SolcCompiler {
  version(): string;
  compile(input: string, callbacks?: { import: (path: string) => ImportResult }): string;
}

// solc's own typings declare everything as `any`; pin the two functions we call to real types.
const compiler = solc as unknown as SolcCompiler;

const requireFromHere = createRequire(import.meta.url);

/**
 * Import callback for solc: serves `@openzeppelin/...` (and any other npm package) from
 * node_modules. Only package-style paths are resolved, and a path may not climb out of its
 * package directory, so a source cannot make the compiler read arbitrary files.
 */
function resolveImport(importPath: string): ImportResult {
  const parts = importPath.split('/');
  const packageParts = importPath.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1);
  const rest = parts.slice(packageParts.length);
  if (rest.length === 0 || parts.some((p) => p === '..' || p === '.' || p === '')) {
    return { error: `unsupported import path "${importPath}"` };
  }
  let packageDir: string;
  try {
    packageDir = dirname(requireFromHere.resolve(`${packageParts.join('/')}/package.json`));
  } catch {
    return { error: `package "${packageParts.join('/')}" is not installed (imported as "${importPath}")` };
  }
  const file = join(packageDir, ...rest);
  if (!file.startsWith(packageDir + sep) || !existsSync(file)) {
    return { error: `file not found: "${importPath}"` };
  }
  return { contents: readFileSync(file, 'utf8') };
}

/** Repo-relative source unit name with forward slashes, e.g. `contracts/src/GBT.sol`. */
function sourceName(file: string): string {
  return relative(REPO_ROOT, file).split(sep).join('/');
}

/** The standard JSON input for every `.sol` file in `contracts/src`, in sorted order. */
export function buildStandardInput(): SolcInput {
  const files = readdirSync(SRC_DIR)
    .filter((f) => f.endsWith('.sol'))
    .sort();
  const sources: Record<string, { content: string }> = {};
  for (const f of files) {
    sources[sourceName(join(SRC_DIR, f))] = { content: readFileSync(join(SRC_DIR, f), 'utf8') };
  }
  return {
    language: 'Solidity',
    sources,
    settings: {
      optimizer: { enabled: true, runs: OPTIMIZER_RUNS },
      evmVersion: EVM_VERSION,
      // Only our own contracts' ABI and creation code: no AST, no metadata JSON, less work.
      outputSelection: Object.fromEntries(
        Object.keys(sources).map((s) => [s, { '*': ['abi', 'evm.bytecode.object'] }]),
      ),
    },
  };
}

/**
 * Compiles the sources and returns the artifact contracts.
 * @throws SolidityCompileError listing every compiler error, or when the installed solc is not
 *         {@link SOLC_VERSION} (a different compiler would silently change the bytecode).
 */
export function compileContracts(): CompileResult {
  const version = compiler.version();
  if (!version.startsWith(`${SOLC_VERSION}+`)) {
    throw new SolidityCompileError(`solc ${SOLC_VERSION} expected, found ${version}; run npm ci`);
  }
  const input = buildStandardInput();
  const output = JSON.parse(compiler.compile(JSON.stringify(input), { import: resolveImport })) as SolcOutput;

  const diagnostics = output.errors ?? [];
  const format = (e: SolcError): string => (e.formattedMessage ?? e.message).trimEnd();
  const errors = diagnostics.filter((e) => e.severity === 'error').map(format);
  if (errors.length > 0) {
    throw new SolidityCompileError(`Solidity compilation failed:\n\n${errors.join('\n\n')}`);
  }
  const warnings = diagnostics.filter((e) => e.severity === 'warning').map(format);

  const contracts = ARTIFACT_CONTRACTS.map((name): CompiledContract => {
    const source = `contracts/src/${name}.sol`;
    const out = output.contracts?.[source]?.[name];
    const object = out?.evm?.bytecode?.object;
    if (!out?.abi || !object) {
      throw new SolidityCompileError(`solc produced no ABI/bytecode for ${name} (expected in ${source})`);
    }
    // Unlinked library references show up as __$...$__ placeholders; we deploy no libraries.
    if (!/^[0-9a-f]+$/.test(object)) {
      throw new SolidityCompileError(`${name} bytecode needs library linking, which deploy.ts does not do`);
    }
    return { name, source, abi: out.abi, bytecode: `0x${object}` };
  });
  return { contracts, warnings };
}

/** `GBT` → `gbt`, `RewardsDistributor` → `rewardsDistributor`. */
function exportPrefix(name: string): string {
  const lead = /^[A-Z]+(?=[A-Z][a-z]|$)|^[A-Z]/.exec(name)?.[0] ?? '';
  return lead.toLowerCase() + name.slice(lead.length);
}

const HEADER = [
  '// Generated by `npx tsx contracts/compile.ts` — do not edit by hand.',
  `// solc ${SOLC_VERSION}, evmVersion ${EVM_VERSION}, optimizer ${OPTIMIZER_RUNS} runs.`,
  '// contracts/artifacts.test.ts fails when this file does not match a fresh compile.',
].join('\n');

/** The text of `artifacts/<Name>.ts` for one contract. */
export function renderArtifact(c: CompiledContract): string {
  const prefix = exportPrefix(c.name);
  return [
    HEADER,
    `// Source: ${c.source}`,
    '',
    `export const ${prefix}Abi = ${JSON.stringify(c.abi, null, 2)} as const;`,
    '',
    `export const ${prefix}Bytecode = '${c.bytecode}' as const;`,
    '',
  ].join('\n');
}

/** The text of `artifacts/index.ts`, re-exporting every artifact module. */
function renderIndex(contracts: readonly CompiledContract[]): string {
  const lines = contracts.map((c) => {
    const p = exportPrefix(c.name);
    return `export { ${p}Abi, ${p}Bytecode } from './${c.name}.ts';`;
  });
  return [HEADER, '', ...lines, ''].join('\n');
}

/** Every generated file, keyed by file name inside `contracts/artifacts/`. */
export function renderArtifacts(contracts: readonly CompiledContract[]): Map<string, string> {
  const files = new Map<string, string>();
  for (const c of contracts) files.set(`${c.name}.ts`, renderArtifact(c));
  files.set('index.ts', renderIndex(contracts));
  return files;
}

/** Names of generated files whose committed text differs from `files` (or that are missing). */
export function staleArtifacts(files: ReadonlyMap<string, string>): string[] {
  const stale: string[] = [];
  for (const [name, text] of files) {
    const path = join(ARTIFACTS_DIR, name);
    if (!existsSync(path) || readFileSync(path, 'utf8') !== text) stale.push(name);
  }
  return stale;
}

function main(argv: readonly string[]): number {
  const check = argv.includes('--check');
  const unknown = argv.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    console.error(`compile: unknown argument ${unknown[0]} (usage: tsx contracts/compile.ts [--check])`);
    return 2;
  }
  let result: CompileResult;
  try {
    result = compileContracts();
  } catch (err) {
    console.error(err instanceof SolidityCompileError ? err.message : err);
    return 1;
  }
  for (const w of result.warnings) console.error(w);
  const files = renderArtifacts(result.contracts);
  if (check) {
    const stale = staleArtifacts(files);
    if (stale.length > 0) {
      console.error(`compile --check: stale artifacts: ${stale.join(', ')}; run npx tsx contracts/compile.ts`);
      return 1;
    }
    console.log('compile --check: artifacts are up to date');
    return 0;
  }
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  for (const [name, text] of files) writeFileSync(join(ARTIFACTS_DIR, name), text);
  console.log(`compiled ${result.contracts.map((c) => c.name).join(', ')} → ${relative(process.cwd(), ARTIFACTS_DIR)}`);
  return 0;
}

// Run only when executed directly (the drift test imports this module).
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}

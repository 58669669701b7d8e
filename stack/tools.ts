/**
 * Finds the binaries the local stack runs, and installs a missing one with this machine's
 * ordinary package tools (go install, apt-get, npm), saying what it does. Tools built here go
 * to one cache folder outside the clone, so a second run (or a second clone) reuses them.
 */
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../config/env.ts';
import { codedError } from '../domain/errors.ts';

const run = promisify(execFile);

export type ToolName = 'temporal' | 'ferretdb' | 'nats-server' | 'anvil' | 'mongod';

export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';
export const FERRETDB_MODULE = 'github.com/FerretDB/FerretDB';
export const FERRETDB_VERSION = 'v1.24.2';
export const NATS_SERVER_MODULE = 'github.com/nats-io/nats-server/v2@v2.10.29';

export class ToolInstallError extends codedError('TOOL_INSTALL_FAILED') {
  override name = 'ToolInstallError';
}

/** Where tools built for this project live: outside the clone, so fresh clones reuse them. */
export function toolsDir(): string {
  return loadConfig().GITBLOCK_TOOLS_DIR;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// PATH is the OS's own lookup list, read here as `spawn` would read it; it is not app config.
function onPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** A binary counts as usable only if it starts: a broken build on the PATH must not be picked. */
async function works(path: string, args: string[]): Promise<boolean> {
  try {
    await run(path, args, { timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

const versionArgs: Record<ToolName, string[]> = {
  temporal: ['--version'],
  ferretdb: ['--version'],
  'nats-server': ['--version'],
  anvil: ['--version'],
  mongod: ['--version'],
};

function anvilFromNodeModules(): string | undefined {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`;
  try {
    const require = createRequire(import.meta.url);
    const bin = join(dirname(require.resolve(`${pkg}/package.json`)), 'bin', 'anvil');
    return isExecutable(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

/** Returns the path of a working binary, or undefined. Looks in the tools folder, then the PATH. */
export async function findTool(name: ToolName): Promise<string | undefined> {
  const candidates = [
    name === 'anvil' ? anvilFromNodeModules() : undefined,
    join(toolsDir(), name),
    onPath(name),
    name === 'nats-server' ? '/usr/sbin/nats-server' : undefined,
  ].filter((p): p is string => p !== undefined && isExecutable(p));
  for (const path of candidates) {
    if (await works(path, versionArgs[name])) return path;
  }
  return undefined;
}

type Say = (line: string) => void;

async function step(say: Say, what: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string) {
  say(`  $ ${command} ${args.join(' ')}`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => reject(new ToolInstallError(`${what}: could not run ${command}: ${err.message}`)));
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new ToolInstallError(`${what}: \`${command} ${args.join(' ')}\` exited ${code}\n${tail}`)),
    );
  });
}

async function needGo(what: string): Promise<string> {
  const go = onPath('go') ?? (isExecutable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) throw new ToolInstallError(`${what} needs Go to install (https://go.dev/dl), or put ${what} on the PATH`);
  return go;
}

/**
 * FerretDB 1.x refuses to start when built by a plain `go install`, because its embedded
 * build/version/version.txt is absent from the module zip. So: download the module, copy it
 * somewhere writable, write the version file, and build from there.
 */
async function installFerretDB(say: Say, dest: string) {
  const go = await needGo('ferretdb');
  const { stdout } = await run(go, ['mod', 'download', '-json', `${FERRETDB_MODULE}@${FERRETDB_VERSION}`], { timeout: 600_000 });
  const dir = (JSON.parse(stdout) as { Dir?: string }).Dir;
  if (!dir) throw new ToolInstallError('ferretdb: go mod download did not report a source folder');
  const work = mkdtempSync(join(tmpdir(), 'ferretdb-src-'));
  try {
    cpSync(dir, work, { recursive: true });
    await run('chmod', ['-R', 'u+w', work]);
    writeFileSync(join(work, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`);
    await step(say, 'ferretdb', go, ['build', '-o', dest, './cmd/ferretdb'], {}, work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function installNats(say: Say, dest: string) {
  // Debian's package is a quick download; the Go module is the portable fallback.
  if (process.getuid?.() === 0 && onPath('apt-get')) {
    try {
      await step(say, 'nats-server', 'apt-get', ['install', '-y', '-q', 'nats-server'], { DEBIAN_FRONTEND: 'noninteractive' });
    } catch {
      await step(say, 'nats-server', 'apt-get', ['update', '-q']);
      await step(say, 'nats-server', 'apt-get', ['install', '-y', '-q', 'nats-server'], { DEBIAN_FRONTEND: 'noninteractive' });
    }
    const installed = onPath('nats-server') ?? '/usr/sbin/nats-server';
    if (isExecutable(installed)) {
      copyFileSync(installed, dest);
      return;
    }
  }
  await step(say, 'nats-server', await needGo('nats-server'), ['install', NATS_SERVER_MODULE], { GOBIN: dirname(dest) });
}

/** Finds a tool, installing it first if this machine lacks it. */
export async function ensureTool(name: ToolName, say: Say = console.log): Promise<string> {
  const found = await findTool(name);
  if (found) return found;
  if (name === 'mongod') throw new ToolInstallError('mongod is not installed; the stack uses FerretDB instead');
  const dest = join(toolsDir(), name);
  mkdirSync(toolsDir(), { recursive: true });
  const started = Date.now();
  switch (name) {
    case 'temporal':
      say(`Installing the Temporal CLI (${TEMPORAL_CLI_MODULE}) into ${toolsDir()}; first time only, a few minutes...`);
      await step(say, 'temporal', await needGo('temporal'), ['install', TEMPORAL_CLI_MODULE], { GOBIN: toolsDir() });
      break;
    case 'ferretdb':
      say(`Installing FerretDB ${FERRETDB_VERSION} (SQLite backend) into ${toolsDir()}; first time only...`);
      await installFerretDB(say, dest);
      break;
    case 'nats-server':
      say(`Installing nats-server into ${toolsDir()}; first time only...`);
      await installNats(say, dest);
      break;
    case 'anvil':
      throw new ToolInstallError('anvil comes from the npm package @foundry-rs/anvil: run `npm ci`');
  }
  const path = await findTool(name);
  if (!path || !existsSync(path)) throw new ToolInstallError(`${name} was installed but does not run; see the output above`);
  say(`  ${name} ready in ${((Date.now() - started) / 1000).toFixed(0)} s: ${path}`);
  return path;
}

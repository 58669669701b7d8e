/**
 * The Python SDK under `npm test`: a virtualenv with the package and its test extras (made once,
 * refreshed when the package changes), `mypy --strict` on the package, and its pytest suite,
 * which starts its own local network with `npm start` (sdk/python/tests/conftest.py).
 *
 * Needs Python 3.10 or later: `GITBLOCK_PYTHON`, else `python3` on the PATH. The virtualenv lives
 * in `<repo>/.data/sdk-venv` (ignored); PyPI is needed the first time, and whenever
 * sdk/python/pyproject.toml changes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const sdk = dirname(fileURLToPath(import.meta.url));
const repo = resolve(sdk, '..', '..');
const venv = join(repo, '.data', 'sdk-venv');
const bin = (name: string) => join(venv, 'bin', name);

/** Children still running: a timed-out test must not leave pytest's network behind. */
const running = new Set<ChildProcess>();

interface Run {
  code: number | null;
  output: string;
}

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolveRun) => {
    const child = spawn(command, args, { cwd: options.cwd ?? sdk, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    child.once('exit', () => running.delete(child));
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', (err) => resolveRun({ code: null, output: `${output}${err.message}` }));
    child.once('exit', (code) => resolveRun({ code, output }));
  });
}

/** Every file of the package that goes into the install, hashed: a change reinstalls it. */
function packageHash(): string {
  const hash = createHash('sha256');
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (name === '__pycache__') continue;
      if (statSync(path).isDirectory()) walk(path);
      else hash.update(relative(sdk, path)).update(readFileSync(path));
    }
  };
  hash.update(readFileSync(join(sdk, 'pyproject.toml'))).update(readFileSync(join(sdk, 'README.md')));
  walk(join(sdk, 'src'));
  return hash.digest('hex');
}

async function ensureVenv(): Promise<void> {
  if (!existsSync(bin('python'))) {
    const python = process.env.GITBLOCK_PYTHON ?? 'python3';
    const version = await run(python, ['-c', 'import sys; assert sys.version_info >= (3, 10), sys.version; print(sys.version)']);
    expect(version.code, `the Python SDK needs Python 3.10 or later (GITBLOCK_PYTHON, else python3 on the PATH):\n${version.output}`).toBe(0);
    const made = await run(python, ['-m', 'venv', venv]);
    expect(made.code, made.output).toBe(0);
  }
  const stamp = join(venv, 'gitblock-sdk.sha256');
  const wanted = packageHash();
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) return;
  const pip = (...args: string[]) => run(bin('python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '--quiet', ...args]);
  const deps = await pip('./[test]');
  expect(deps.code, `pip install sdk/python[test] failed:\n${deps.output}`).toBe(0);
  // Same version, new code: pip keeps an installed 0.1.0 unless told to replace it.
  const fresh = await pip('--force-reinstall', '--no-deps', './');
  expect(fresh.code, `reinstalling sdk/python failed:\n${fresh.output}`).toBe(0);
  writeFileSync(stamp, wanted);
}

describe('the Python SDK (sdk/python)', () => {
  afterAll(async () => {
    // Ctrl-C, as a person would: pytest's teardown stops its `npm start`, which stops its stack.
    await Promise.all(
      [...running].map(
        (child) =>
          new Promise<void>((done) => {
            const force = setTimeout(() => child.kill('SIGKILL'), 45_000);
            child.once('exit', () => {
              clearTimeout(force);
              done();
            });
            child.kill('SIGINT');
          }),
      ),
    );
  }, 60_000);

  it('installs, passes mypy --strict, and passes its pytest suite against a real local network', async () => {
    await ensureVenv();

    const typed = await run(bin('mypy'), ['--strict', 'src', 'tests']);
    expect(typed.code, `mypy --strict failed:\n${typed.output}`).toBe(0);

    // The suite's network is its own `npm start`; nothing of this run's stack leaks into it.
    const env = { ...process.env, GITBLOCK_REPO: repo, PYTHONDONTWRITEBYTECODE: '1' };
    const tested = await run(bin('python'), ['-m', 'pytest', '-p', 'no:cacheprovider', '-q', '--durations=5', 'tests'], { env });
    expect(tested.code, `pytest failed:\n${tested.output}`).toBe(0);
    expect(tested.output).toMatch(/\d+ passed/);
    expect(tested.output).not.toMatch(/\d+ (failed|skipped|errors?)\b/);
  }, 540_000);
});

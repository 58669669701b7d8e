/**
 * resolveModelFile against a real HTTP server on 127.0.0.1 (Range support, dropped
 * connections, wrong bytes, stalls), plus the generated fixture and the operator's own file.
 * Needs neither the global stack nor the internet.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { catalogModelSchema, getModel, type CatalogModel } from '../../models/catalog.ts';
import {
  formatProgress,
  ModelDownloadError,
  ModelFileError,
  ModelIntegrityError,
  ModelUnavailableError,
  printProgressTo,
  resolveModelFile,
  type DownloadProgress,
} from './model-files.ts';

const SIZE = 3 * 1024 * 1024 + 123;

/** Deterministic bytes that start like a GGUF: a sha256 counter stream after the magic. */
function makeBytes(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  out.write('GGUF', 0, 'latin1');
  let at = 4;
  for (let i = 0; at < size; i++) {
    const block = createHash('sha256').update(`${seed}:${i}`).digest();
    at += block.copy(out, at);
  }
  return out;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const DATA = makeBytes(SIZE, 'model');
const DATA_SHA = sha256(DATA);

interface Seen {
  readonly range: string | undefined;
  readonly ifRange: string | undefined;
}

/** What the server does with a request; `n` counts requests from 0. */
type Behaviour = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** Serves `bytes` with Range support and a strong ETag, like a CDN. */
function serveBytes(bytes: Buffer, req: IncomingMessage, res: ServerResponse, dropAfter?: number): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = m?.[1] === undefined ? 0 : Number(m[1]);
  const headers = { etag: '"v1"', 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
  if (start >= bytes.length && m) {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${bytes.length}` }).end();
    return;
  }
  const body = bytes.subarray(start);
  res.writeHead(m ? 206 : 200, {
    ...headers,
    'content-length': String(body.length),
    ...(m ? { 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
  });
  if (dropAfter === undefined) {
    res.end(body);
    return;
  }
  // Send part of the body, give the client time to write it to disk, then cut the connection.
  res.write(body.subarray(0, dropAfter), () => setTimeout(() => res.socket?.destroy(), 150));
}

let server: Server;
let baseUrl = '';
let behaviour: Behaviour = () => {};
let seen: Seen[] = [];
let dir = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined });
    behaviour(req, res, seen.length - 1);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((ok) => server.close(ok));
});

beforeEach(async () => {
  seen = [];
  behaviour = (req, res) => serveBytes(DATA, req, res);
  dir = await mkdtemp(join(tmpdir(), 'model-files-test-'));
});

afterEach(async () => {
  server.closeAllConnections();
  await rm(dir, { recursive: true, force: true });
});

/** A catalog entry for DATA served by the test server. */
function testModel(url: string, overrides: Partial<CatalogModel> = {}): CatalogModel {
  return catalogModelSchema.parse({
    id: 'test-model',
    displayName: 'Test Model',
    architecture: 'llama',
    chatFormat: 'chatml',
    fileName: 'test-model.Q4_0.gguf',
    sources: [{ kind: 'huggingface', repo: 'test/test-model', revision: '0'.repeat(40), file: 'test-model.Q4_0.gguf', url }],
    quantization: 'Q4_0',
    sizeBytes: SIZE,
    sha256: DATA_SHA,
    contextLength: 2048,
    defaultContextLength: 2048,
    memoryBytes: SIZE,
    parameterCount: 1,
    rewardWeight: 1,
    ...overrides,
  });
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  const result = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(result instanceof Error)) throw new Error(`expected a rejection with an Error, got ${String(result)}`);
  return result;
}

describe('resolveModelFile: Hugging Face download', () => {
  it('downloads, verifies, reports progress up to 100%, then serves from the cache without a request', async () => {
    const model = testModel(`${baseUrl}/model.gguf`);
    const progress: DownloadProgress[] = [];
    const first = await resolveModelFile(model, { modelDir: dir, onProgress: (p) => progress.push(p) });

    const target = join(dir, model.fileName);
    expect(first).toEqual({ path: target, source: 'download', sha256: DATA_SHA });
    expect(sha256(await readFile(target))).toBe(DATA_SHA);
    expect(existsSync(`${target}.part`)).toBe(false);
    expect(existsSync(`${target}.part.meta.json`)).toBe(false);
    expect(seen).toEqual([{ range: undefined, ifRange: undefined }]);

    expect(progress.length).toBeGreaterThanOrEqual(2);
    for (const [i, p] of progress.entries()) {
      expect(p.modelId).toBe('test-model');
      expect(p.bytesTotal).toBe(SIZE);
      if (i > 0) expect(p.bytesDone).toBeGreaterThanOrEqual(progress[i - 1]!.bytesDone);
    }
    expect(progress.at(-1)).toMatchObject({ bytesDone: SIZE, bytesTotal: SIZE, etaSeconds: 0 });

    // The hash travelled with the file, so neither the cache check nor the engine re-reads it.
    const sidecar = JSON.parse(await readFile(`${target}.sha256.json`, 'utf8')) as { size: number; sha256: string };
    expect(sidecar).toMatchObject({ size: SIZE, sha256: DATA_SHA });

    const second = await resolveModelFile(model, { modelDir: dir, onProgress: (p) => progress.push(p) });
    expect(second).toEqual({ path: target, source: 'cache', sha256: DATA_SHA });
    expect(seen).toHaveLength(1);
  });

  it('resumes a broken download with a Range request and completes with the right hash', async () => {
    const model = testModel(`${baseUrl}/model.gguf`);
    const target = join(dir, model.fileName);
    const dropAfter = 1024 * 1024;
    behaviour = (req, res, n) => serveBytes(DATA, req, res, n === 0 ? dropAfter : undefined);

    const err = await rejection(resolveModelFile(model, { modelDir: dir }));
    expect(err).toBeInstanceOf(ModelUnavailableError);
    const cause = (err as ModelUnavailableError).errors[0];
    expect(cause).toBeInstanceOf(ModelDownloadError);
    expect((cause as ModelDownloadError).partialPath).toBe(`${target}.part`);
    expect(err.message).toContain(`${target}.part`);
    expect(err.message).toMatch(/resumes/);
    expect(existsSync(target)).toBe(false);
    const kept = (await stat(`${target}.part`)).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(dropAfter);

    const progress: DownloadProgress[] = [];
    const result = await resolveModelFile(model, { modelDir: dir, onProgress: (p) => progress.push(p) });
    expect(result).toEqual({ path: target, source: 'download', sha256: DATA_SHA });
    expect(seen).toEqual([
      { range: undefined, ifRange: undefined },
      { range: `bytes=${kept}-`, ifRange: '"v1"' },
    ]);
    expect(sha256(await readFile(target))).toBe(DATA_SHA);
    // Progress continues from the kept bytes rather than from zero.
    expect(progress[0]?.bytesDone).toBe(kept);
    expect(progress.at(-1)?.bytesDone).toBe(SIZE);
    expect(existsSync(`${target}.part`)).toBe(false);
  });

  it('starts over when the server ignores the Range header', async () => {
    const model = testModel(`${baseUrl}/model.gguf`);
    const target = join(dir, model.fileName);
    // An earlier attempt's bytes, but a server without range support this time.
    await writeFile(`${target}.part`, DATA.subarray(0, 1000));
    await writeFile(`${target}.part.meta.json`, JSON.stringify({ url: model.sources[0]!.kind === 'huggingface' ? model.sources[0]!.url : '' }));
    behaviour = (_req, res) => {
      res.writeHead(200, { 'content-length': String(DATA.length) });
      res.end(DATA);
    };
    const result = await resolveModelFile(model, { modelDir: dir });
    expect(result.sha256).toBe(DATA_SHA);
    expect(seen[0]?.range).toBe('bytes=1000-');
    expect(sha256(await readFile(target))).toBe(DATA_SHA);
  });

  it('rejects wrong bytes with both hashes and leaves no file behind', async () => {
    const wrong = makeBytes(SIZE, 'not the model');
    behaviour = (req, res) => serveBytes(wrong, req, res);
    const model = testModel(`${baseUrl}/model.gguf`);
    const target = join(dir, model.fileName);

    const err = await rejection(resolveModelFile(model, { modelDir: dir }));
    expect(err).toBeInstanceOf(ModelUnavailableError);
    const cause = (err as ModelUnavailableError).errors[0];
    expect(cause).toBeInstanceOf(ModelIntegrityError);
    expect((cause as ModelIntegrityError).code).toBe('MODEL_INTEGRITY');
    expect(cause?.message).toContain(DATA_SHA);
    expect(cause?.message).toContain(sha256(wrong));
    expect(err.message).toContain(sha256(wrong));
    expect(existsSync(target)).toBe(false);
    expect(existsSync(`${target}.part`)).toBe(false);
    expect(existsSync(`${target}.sha256.json`)).toBe(false);
  });

  it('refuses a file of the wrong size before downloading it', async () => {
    const model = testModel(`${baseUrl}/model.gguf`, { sizeBytes: SIZE + 1, memoryBytes: SIZE + 1 });
    const err = await rejection(resolveModelFile(model, { modelDir: dir }));
    expect((err as ModelUnavailableError).errors[0]).toBeInstanceOf(ModelIntegrityError);
    expect(err.message).toContain(`is ${SIZE} bytes, expected ${SIZE + 1}`);
    expect(existsSync(join(dir, `${model.fileName}.part`))).toBe(false);
  });

  it('reports an HTTP error status', async () => {
    behaviour = (_req, res) => res.writeHead(404, 'Not Found').end();
    const model = testModel(`${baseUrl}/missing.gguf`);
    const err = await rejection(resolveModelFile(model, { modelDir: dir }));
    expect((err as ModelUnavailableError).errors[0]).toBeInstanceOf(ModelDownloadError);
    expect(err.message).toContain('HTTP 404');
  });

  it('gives up on a stalled download, keeping what arrived', async () => {
    behaviour = (_req, res) => {
      res.writeHead(200, { 'content-length': String(SIZE) });
      res.write(DATA.subarray(0, 64 * 1024));
    };
    const model = testModel(`${baseUrl}/model.gguf`);
    const err = await rejection(resolveModelFile(model, { modelDir: dir, stallTimeoutMs: 300 }));
    expect(err).toBeInstanceOf(ModelUnavailableError);
    expect(err.message).toMatch(/no data received/);
    expect((await stat(join(dir, `${model.fileName}.part`))).size).toBeGreaterThan(0);
  });

  it('stops when the signal aborts, rethrowing its reason and keeping the .part', async () => {
    const controller = new AbortController();
    behaviour = (_req, res) => {
      res.writeHead(200, { 'content-length': String(SIZE) });
      res.write(DATA.subarray(0, 64 * 1024), () => setTimeout(() => controller.abort(new Error('operator pressed ^C')), 100));
    };
    const model = testModel(`${baseUrl}/model.gguf`);
    const err = await rejection(resolveModelFile(model, { modelDir: dir, signal: controller.signal }));
    expect(err.message).toBe('operator pressed ^C');
    expect(existsSync(join(dir, `${model.fileName}.part`))).toBe(true);
  });
});

describe('resolveModelFile: no source', () => {
  const expectHelpfulMessage = (err: Error, model: CatalogModel, url: string) => {
    expect(err).toBeInstanceOf(ModelUnavailableError);
    expect((err as ModelUnavailableError).code).toBe('MODEL_UNAVAILABLE');
    expect(err.message).toContain(model.id);
    expect(err.message).toContain(join(dir, model.fileName));
    expect(err.message).toContain(String(model.sizeBytes));
    expect(err.message).toContain(url);
    expect(err.message).toContain(`--model-file ${model.id}=`);
  };

  it('offline: names the file, its path, size, sources and --model-file without any request', async () => {
    const url = `${baseUrl}/model.gguf`;
    const model = testModel(url);
    const err = await rejection(resolveModelFile(model, { modelDir: dir, offline: true }));
    expectHelpfulMessage(err, model, url);
    expect(err.message).toContain('offline');
    expect(seen).toHaveLength(0);
  });

  it('unreachable server: the same message, with the network error', async () => {
    const closed = createServer();
    await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/model.gguf`;
    await new Promise((ok) => closed.close(ok));

    const model = testModel(url);
    const err = await rejection(resolveModelFile(model, { modelDir: dir }));
    expectHelpfulMessage(err, model, url);
    expect(err.message).toContain('could not reach');
  });

  it('offline with a wrong file in place: says what is wrong with it', async () => {
    const model = testModel(`${baseUrl}/model.gguf`);
    await writeFile(join(dir, model.fileName), DATA.subarray(0, 100));
    const err = await rejection(resolveModelFile(model, { modelDir: dir, offline: true }));
    expect(err.message).toContain(`is 100 bytes, expected ${SIZE}`);
  });
});

describe('resolveModelFile: --model-file', () => {
  it('uses a GGUF as is, without size or hash checks', async () => {
    const path = join(dir, 'my-own-quant.gguf');
    await writeFile(path, makeBytes(5000, 'other quant'));
    const model = testModel(`${baseUrl}/model.gguf`);
    expect(await resolveModelFile(model, { modelDir: dir, localPath: path })).toEqual({ path, source: 'local' });
    expect(seen).toHaveLength(0);
  });

  it('rejects a file that is not a GGUF', async () => {
    const path = join(dir, 'page.gguf');
    await writeFile(path, '<!doctype html><title>Hugging Face</title>');
    const err = await rejection(resolveModelFile(testModel(`${baseUrl}/x.gguf`), { modelDir: dir, localPath: path }));
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as ModelFileError).code).toBe('MODEL_FILE_INVALID');
    expect(err.message).toContain(`--model-file test-model=${path}`);
    expect(err.message).toContain('not a GGUF file');
    expect(err.message).toContain('HTML');
  });

  it('rejects a missing file and a directory', async () => {
    const missing = join(dir, 'nope.gguf');
    const a = await rejection(resolveModelFile(testModel(`${baseUrl}/x.gguf`), { modelDir: dir, localPath: missing }));
    expect(a).toBeInstanceOf(ModelFileError);
    expect(a.message).toContain(`${missing} does not exist`);

    const sub = join(dir, 'sub');
    await mkdir(sub);
    const b = await rejection(resolveModelFile(testModel(`${baseUrl}/x.gguf`), { modelDir: dir, localPath: sub }));
    expect(b).toBeInstanceOf(ModelFileError);
    expect(b.message).toContain('not a regular file');
  });
});

describe('resolveModelFile: generated source', () => {
  it('writes the gitblock-tiny fixture, then finds it in the cache', async () => {
    const model = getModel('gitblock-tiny');
    const target = join(dir, model.fileName);
    const first = await resolveModelFile(model, { modelDir: dir, offline: true });
    expect(first).toEqual({ path: target, source: 'generated', sha256: model.sha256 });
    expect((await stat(target)).size).toBe(model.sizeBytes);
    expect(sha256(await readFile(target))).toBe(model.sha256);

    const second = await resolveModelFile(model, { modelDir: dir });
    expect(second).toEqual({ path: target, source: 'cache', sha256: model.sha256 });
  });
});

describe('progress display', () => {
  const p = (bytesDone: number, bytesTotal = 98_362_432): DownloadProgress => ({
    modelId: 'smollm2-135m',
    bytesDone,
    bytesTotal,
    bytesPerSecond: 12.3 * 1024 * 1024,
    etaSeconds: bytesDone >= bytesTotal ? 0 : 4,
  });

  it('formats a one-line bar', () => {
    expect(formatProgress(p(47_395_635), 10)).toBe('smollm2-135m  [====>     ]  45.2/93.8 MiB  12.3 MiB/s  ETA 4s');
    expect(formatProgress(p(98_362_432), 10)).toBe('smollm2-135m  [==========]  93.8/93.8 MiB  12.3 MiB/s  done');
    expect(formatProgress({ ...p(0, 5 * 1024 ** 3), etaSeconds: undefined, bytesPerSecond: 0 })).toContain('0.0/5.0 GiB  0 KiB/s  ETA --');
    expect(formatProgress({ ...p(1, 5 * 1024 ** 3), etaSeconds: 3725 })).toContain('ETA 1h02m');
  });

  it('prints a line about every 10% when not on a terminal', () => {
    const out: string[] = [];
    const print = printProgressTo({ write: (s: string) => out.push(s) });
    for (let i = 0; i <= 100; i++) print(p(Math.round((98_362_432 * i) / 100)));
    expect(out).toHaveLength(11);
    expect(out.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
    expect(out.at(-1)).toContain('done');
  });

  it('redraws one line on a terminal and ends it when done', () => {
    const out: string[] = [];
    const print = printProgressTo({ write: (s: string) => out.push(s), isTTY: true, columns: 40 });
    print(p(1000));
    print(p(98_362_432));
    expect(out).toHaveLength(2);
    expect(out[0]?.startsWith('\r')).toBe(true);
    expect(out[0]).not.toContain('\n');
    expect(out[0]!.replace('\x1b[K', '').length).toBeLessThanOrEqual(40);
    expect(out[1]?.endsWith('\n')).toBe(true);
  });

  it('shows a label in place of the model id when given one', () => {
    const out: string[] = [];
    printProgressTo({ write: (s: string) => out.push(s) }, 'SmolLM2')(p(1000));
    expect(out[0]?.startsWith('SmolLM2  [')).toBe(true);
  });
});

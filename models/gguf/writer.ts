/**
 * A small GGUF v3 writer.
 *
 * Layout (all little-endian), per ggml's docs/gguf.md:
 *
 *   magic "GGUF" | version u32 = 3 | tensor_count u64 | metadata_kv_count u64
 *   metadata_kv[]: key (gguf string) | value_type u32 | value
 *   tensor_info[]: name (gguf string) | n_dims u32 | ne[n_dims] u64 | ggml_type u32 | offset u64
 *   zero padding up to `general.alignment` (default 32)
 *   tensor data, each tensor starting at a multiple of the alignment (offsets are relative
 *   to the start of the data section), zero padding between tensors
 *
 * A gguf string is `len u64` followed by that many UTF-8 bytes (no terminator). An array is
 * `item_type u32 | count u64 | items`, and may nest.
 *
 * Only F32 and F16 tensors are supported: enough for hand-built test models, and the two
 * types every ggml backend can load without a quantizer.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { codedError } from '../../domain/errors.ts';

/** GGUF metadata value type ids, as numbered by the spec. */
export const GgufValueType = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;

/** ggml tensor type ids this writer can emit. */
export const GgmlType = {
  F32: 0,
  F16: 1,
} as const;

export type GgmlTensorType = keyof typeof GgmlType;

/** Maps each scalar GGUF value type to the JS type that carries it. */
export interface GgufScalarTypes {
  uint8: number;
  int8: number;
  uint16: number;
  int16: number;
  uint32: number;
  int32: number;
  float32: number;
  float64: number;
  /** 64-bit integers are bigint so values past 2^53 survive. */
  uint64: bigint;
  int64: bigint;
  bool: boolean;
  string: string;
}

export type GgufScalarTypeName = keyof GgufScalarTypes;

export type GgufScalarValue = {
  [K in GgufScalarTypeName]: { readonly type: K; readonly value: GgufScalarTypes[K] };
}[GgufScalarTypeName];

export type GgufArrayValue =
  | {
      [K in GgufScalarTypeName]: {
        readonly type: 'array';
        readonly itemType: K;
        readonly values: readonly GgufScalarTypes[K][];
      };
    }[GgufScalarTypeName]
  | { readonly type: 'array'; readonly itemType: 'array'; readonly values: readonly GgufArrayValue[] };

export type GgufValue = GgufScalarValue | GgufArrayValue;

/**
 * Typed constructors for metadata values, so call sites read `kv.uint32(2048)` instead of
 * spelling out the discriminated union.
 */
export const kv = {
  uint8: (value: number): GgufValue => ({ type: 'uint8', value }),
  int8: (value: number): GgufValue => ({ type: 'int8', value }),
  uint16: (value: number): GgufValue => ({ type: 'uint16', value }),
  int16: (value: number): GgufValue => ({ type: 'int16', value }),
  uint32: (value: number): GgufValue => ({ type: 'uint32', value }),
  int32: (value: number): GgufValue => ({ type: 'int32', value }),
  float32: (value: number): GgufValue => ({ type: 'float32', value }),
  float64: (value: number): GgufValue => ({ type: 'float64', value }),
  uint64: (value: bigint): GgufValue => ({ type: 'uint64', value }),
  int64: (value: bigint): GgufValue => ({ type: 'int64', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  string: (value: string): GgufValue => ({ type: 'string', value }),
  /** An array of scalars of one type. */
  array: <K extends GgufScalarTypeName>(itemType: K, values: readonly GgufScalarTypes[K][]): GgufArrayValue =>
    // The mapped union cannot be narrowed through a generic K; the shape is right by construction.
    ({ type: 'array', itemType, values }) as unknown as GgufArrayValue,
  /** An array of arrays (the spec allows nesting). */
  nestedArray: (values: readonly GgufArrayValue[]): GgufArrayValue => ({ type: 'array', itemType: 'array', values }),
} as const;

/** One tensor to write. */
export interface GgufTensor {
  readonly name: string;
  /**
   * Shape in ggml order: `dims[0]` (ne[0]) is the innermost, contiguous dimension. A PyTorch
   * `[rows, cols]` weight is `[cols, rows]` here.
   */
  readonly dims: readonly number[];
  /** Storage type in the file; `data` is converted on write. */
  readonly type: GgmlTensorType;
  /** Values with `dims[0]` varying fastest; length must equal the product of `dims`. */
  readonly data: Float32Array;
}

/** Everything that goes into a GGUF file. */
export interface GgufFileSpec {
  /**
   * Metadata in write order. `general.alignment`, if present, must be a uint32 and sets the
   * alignment; otherwise the spec default of 32 applies and no key is written.
   */
  readonly metadata: Readonly<Record<string, GgufValue>>;
  readonly tensors: readonly GgufTensor[];
}

/** Raised for a spec that cannot be written as valid GGUF. */
export class GgufWriteError extends codedError('GGUF_WRITE_FAILED') {
  override readonly name = 'GgufWriteError';
}

export const GGUF_MAGIC = 'GGUF';
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS. */
const MAX_DIMS = 4;

const BYTES_PER_ELEMENT: Record<GgmlTensorType, number> = { F32: 4, F16: 2 };

const INT_RANGES = {
  uint8: [0, 0xff],
  int8: [-0x80, 0x7f],
  uint16: [0, 0xffff],
  int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffffffff],
  int32: [-0x80000000, 0x7fffffff],
} as const satisfies Partial<Record<GgufScalarTypeName, readonly [number, number]>>;

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

const utf8 = new TextEncoder();

/**
 * Growable little-endian byte buffer. Each write reserves space first and only then touches
 * `buf`/`view`, because reserving may swap them for larger ones.
 */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  private len = 0;

  get length(): number {
    return this.len;
  }

  private reserve(extra: number): number {
    const need = this.len + extra;
    if (need > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < need) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.len;
    this.len = need;
    return at;
  }

  u8(v: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, v);
  }
  i8(v: number): void {
    const at = this.reserve(1);
    this.view.setInt8(at, v);
  }
  u16(v: number): void {
    const at = this.reserve(2);
    this.view.setUint16(at, v, true);
  }
  i16(v: number): void {
    const at = this.reserve(2);
    this.view.setInt16(at, v, true);
  }
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  i32(v: number): void {
    const at = this.reserve(4);
    this.view.setInt32(at, v, true);
  }
  u64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, v, true);
  }
  i64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigInt64(at, v, true);
  }
  f32(v: number): void {
    const at = this.reserve(4);
    this.view.setFloat32(at, v, true);
  }
  f64(v: number): void {
    const at = this.reserve(8);
    this.view.setFloat64(at, v, true);
  }
  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
  }
  /** Zero bytes up to the next multiple of `alignment`; the buffer is zero-filled on growth. */
  padTo(alignment: number): void {
    this.reserve(padding(this.len, alignment));
  }
  /** A GGUF string: u64 byte length, then UTF-8 bytes. */
  str(s: string): void {
    const b = utf8.encode(s);
    this.u64(BigInt(b.length));
    this.bytes(b);
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function padding(offset: number, alignment: number): number {
  const rem = offset % alignment;
  return rem === 0 ? 0 : alignment - rem;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * IEEE 754 binary32 → binary16 bits, round-to-nearest-even, with overflow to ±Inf, gradual
 * underflow to subnormals, and NaN kept as a quiet NaN.
 */
export function float32ToFloat16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0] ?? 0;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;

  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);

  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;

  if (e <= 0) {
    // Subnormal half: value = m * 2^-24, m = (1.mant) * 2^(e-1+10) => shift the 24-bit
    // significand right by (14 - e). Past 24 bits of shift nothing survives rounding.
    const shift = 14 - e;
    if (shift > 24) return sign;
    const full = mant | 0x800000;
    let m = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1) === 1)) m += 1;
    // A carry into bit 10 yields the smallest normal, which is the correct encoding.
    return sign | m;
  }

  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h += 1; // a carry may reach Inf: correct
  return sign | h;
}

function checkInt(key: string, type: keyof typeof INT_RANGES, v: number): void {
  const [lo, hi] = INT_RANGES[type];
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new GgufWriteError(`${key}: ${v} is not a valid ${type}`);
  }
}

function writeScalar(sink: ByteSink, key: string, value: GgufScalarValue): void {
  switch (value.type) {
    case 'uint8':
      checkInt(key, 'uint8', value.value);
      sink.u8(value.value);
      return;
    case 'int8':
      checkInt(key, 'int8', value.value);
      sink.i8(value.value);
      return;
    case 'uint16':
      checkInt(key, 'uint16', value.value);
      sink.u16(value.value);
      return;
    case 'int16':
      checkInt(key, 'int16', value.value);
      sink.i16(value.value);
      return;
    case 'uint32':
      checkInt(key, 'uint32', value.value);
      sink.u32(value.value);
      return;
    case 'int32':
      checkInt(key, 'int32', value.value);
      sink.i32(value.value);
      return;
    case 'uint64':
      if (value.value < 0n || value.value > U64_MAX) throw new GgufWriteError(`${key}: ${value.value} is not a valid uint64`);
      sink.u64(value.value);
      return;
    case 'int64':
      if (value.value < I64_MIN || value.value > I64_MAX) throw new GgufWriteError(`${key}: ${value.value} is not a valid int64`);
      sink.i64(value.value);
      return;
    case 'float32':
      sink.f32(value.value);
      return;
    case 'float64':
      sink.f64(value.value);
      return;
    case 'bool':
      sink.u8(value.value ? 1 : 0);
      return;
    case 'string':
      sink.str(value.value);
      return;
  }
}

function writeArrayBody(sink: ByteSink, key: string, value: GgufArrayValue): void {
  sink.u32(GgufValueType[value.itemType]);
  sink.u64(BigInt(value.values.length));
  if (value.itemType === 'array') {
    for (const item of value.values) writeArrayBody(sink, key, item);
    return;
  }
  for (const item of value.values) {
    // Re-wrap each item as a scalar so range checks and encoding live in one place.
    writeScalar(sink, key, { type: value.itemType, value: item } as GgufScalarValue);
  }
}

function writeValue(sink: ByteSink, key: string, value: GgufValue): void {
  sink.u32(GgufValueType[value.type]);
  if (value.type === 'array') writeArrayBody(sink, key, value);
  else writeScalar(sink, key, value);
}

/** Keys are lower_snake_case segments separated by dots (the spec's rule). */
const KEY_PATTERN = /^[a-z0-9_]+(\.[a-z0-9_]+)*$/;

function resolveAlignment(metadata: GgufFileSpec['metadata']): number {
  const v = metadata['general.alignment'];
  if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (v.type !== 'uint32') throw new GgufWriteError('general.alignment must be a uint32');
  if (v.value <= 0 || v.value % 8 !== 0 || (v.value & (v.value - 1)) !== 0) {
    // The spec asks for a multiple of 8; ggml additionally requires a power of two.
    throw new GgufWriteError(`general.alignment must be a power of two and a multiple of 8, got ${v.value}`);
  }
  return v.value;
}

function validateTensor(t: GgufTensor, seen: Set<string>): number {
  if (t.name.length === 0) throw new GgufWriteError('tensor with an empty name');
  if (utf8.encode(t.name).length > 63) {
    // ggml's GGML_MAX_NAME is 64 including the terminator.
    throw new GgufWriteError(`tensor name too long for ggml: ${t.name}`);
  }
  if (seen.has(t.name)) throw new GgufWriteError(`duplicate tensor name: ${t.name}`);
  seen.add(t.name);
  if (t.dims.length < 1 || t.dims.length > MAX_DIMS) {
    throw new GgufWriteError(`${t.name}: ${t.dims.length} dims, ggml supports 1..${MAX_DIMS}`);
  }
  let count = 1;
  for (const d of t.dims) {
    if (!Number.isSafeInteger(d) || d <= 0) throw new GgufWriteError(`${t.name}: bad dimension ${d}`);
    count *= d;
  }
  if (count !== t.data.length) {
    throw new GgufWriteError(`${t.name}: dims [${t.dims.join(', ')}] hold ${count} values, data has ${t.data.length}`);
  }
  if (!(t.type in GgmlType)) throw new GgufWriteError(`${t.name}: unsupported tensor type ${String(t.type)}`);
  return count * BYTES_PER_ELEMENT[t.type];
}

/** Byte layout of the tensors within the data section, computed before anything is written. */
interface TensorPlacement {
  readonly tensor: GgufTensor;
  readonly offset: number;
  readonly byteLength: number;
}

function placeTensors(tensors: readonly GgufTensor[], alignment: number): { placements: TensorPlacement[]; dataSize: number } {
  const seen = new Set<string>();
  const placements: TensorPlacement[] = [];
  let offset = 0;
  for (const tensor of tensors) {
    const byteLength = validateTensor(tensor, seen);
    placements.push({ tensor, offset, byteLength });
    offset += byteLength;
    offset += padding(offset, alignment);
  }
  return { placements, dataSize: offset };
}

function writeTensorData(sink: ByteSink, t: GgufTensor): void {
  if (t.type === 'F32') {
    for (const v of t.data) sink.f32(v);
  } else {
    for (const v of t.data) sink.u16(float32ToFloat16Bits(v));
  }
}

/**
 * Serialise a GGUF v3 file into memory.
 *
 * Output is a pure function of the input: no timestamps or host data are written, so the
 * same spec always yields the same bytes.
 *
 * @throws GgufWriteError if a key, value or tensor cannot be represented validly.
 */
export function encodeGguf(spec: GgufFileSpec): Uint8Array {
  const alignment = resolveAlignment(spec.metadata);
  const entries = Object.entries(spec.metadata);
  for (const [key] of entries) {
    if (!KEY_PATTERN.test(key) || key.length > 0xffff) throw new GgufWriteError(`invalid metadata key: ${JSON.stringify(key)}`);
  }
  const { placements } = placeTensors(spec.tensors, alignment);

  const sink = new ByteSink();
  sink.bytes(utf8.encode(GGUF_MAGIC));
  sink.u32(GGUF_VERSION);
  sink.u64(BigInt(placements.length));
  sink.u64(BigInt(entries.length));

  for (const [key, value] of entries) {
    sink.str(key);
    writeValue(sink, key, value);
  }

  for (const { tensor, offset } of placements) {
    sink.str(tensor.name);
    sink.u32(tensor.dims.length);
    for (const d of tensor.dims) sink.u64(BigInt(d));
    sink.u32(GgmlType[tensor.type]);
    sink.u64(BigInt(offset));
  }

  sink.padTo(alignment);
  const dataStart = sink.length;
  for (const { tensor, offset } of placements) {
    sink.padTo(alignment);
    if (sink.length - dataStart !== offset) {
      throw new GgufWriteError(`internal layout error at ${tensor.name}`);
    }
    writeTensorData(sink, tensor);
  }
  // Trailing padding keeps the last tensor's region a whole number of alignment units, as
  // llama.cpp's own writer does.
  sink.padTo(alignment);
  return sink.finish();
}

/**
 * Write a GGUF v3 file atomically: the bytes go to a sibling temp file that is renamed into
 * place, so a reader (or a concurrent writer of the same content) never sees a partial file.
 *
 * @returns the number of bytes written.
 */
export async function writeGgufFile(path: string, spec: GgufFileSpec): Promise<number> {
  const bytes = encodeGguf(spec);
  await writeBytesAtomically(path, bytes);
  return bytes.length;
}

/** Write `bytes` to `path` via a unique temp file plus rename, creating parent directories. */
export async function writeBytesAtomically(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  // A random suffix keeps concurrent writers (parallel test files) from sharing a temp file.
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

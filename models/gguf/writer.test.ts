import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeGguf,
  float32ToFloat16Bits,
  GgufWriteError,
  kv,
  writeGgufFile,
  type GgufFileSpec,
  type GgufTensor,
} from './writer.ts';

/**
 * An independent, minimal GGUF reader written from the spec, so the round trip checks the
 * byte layout rather than the writer agreeing with itself.
 */
type Parsed = string | number | bigint | boolean | Parsed[];

interface ParsedFile {
  version: number;
  metadata: Map<string, { type: number; value: Parsed }>;
  tensors: { name: string; dims: bigint[]; type: number; offset: bigint }[];
  dataStart: number;
}

function parseGguf(bytes: Uint8Array, alignment = 32): ParsedFile {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dec = new TextDecoder('utf-8', { fatal: true });
  let p = 0;
  const u32 = () => ((p += 4), view.getUint32(p - 4, true));
  const u64 = () => ((p += 8), view.getBigUint64(p - 8, true));
  const str = () => {
    const n = Number(u64());
    p += n;
    return dec.decode(bytes.subarray(p - n, p));
  };
  const value = (type: number): Parsed => {
    switch (type) {
      case 0: return (p += 1), view.getUint8(p - 1);
      case 1: return (p += 1), view.getInt8(p - 1);
      case 2: return (p += 2), view.getUint16(p - 2, true);
      case 3: return (p += 2), view.getInt16(p - 2, true);
      case 4: return u32();
      case 5: return (p += 4), view.getInt32(p - 4, true);
      case 6: return (p += 4), view.getFloat32(p - 4, true);
      case 7: {
        const b = view.getUint8(p++);
        if (b > 1) throw new Error(`invalid bool byte ${b}`);
        return b === 1;
      }
      case 8: return str();
      case 9: {
        const itemType = u32();
        const n = Number(u64());
        return Array.from({ length: n }, () => value(itemType));
      }
      case 10: return u64();
      case 11: return (p += 8), view.getBigInt64(p - 8, true);
      case 12: return (p += 8), view.getFloat64(p - 8, true);
      default: throw new Error(`unknown value type ${type}`);
    }
  };

  expect(dec.decode(bytes.subarray(0, 4))).toBe('GGUF');
  p = 4;
  const version = u32();
  const tensorCount = Number(u64());
  const kvCount = Number(u64());
  const metadata = new Map<string, { type: number; value: Parsed }>();
  for (let i = 0; i < kvCount; i++) {
    const key = str();
    const type = u32();
    metadata.set(key, { type, value: value(type) });
  }
  const tensors: ParsedFile['tensors'] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = str();
    const nDims = u32();
    const dims = Array.from({ length: nDims }, () => u64());
    tensors.push({ name, dims, type: u32(), offset: u64() });
  }
  const pad = (alignment - (p % alignment)) % alignment;
  expect([...bytes.subarray(p, p + pad)].every((b) => b === 0)).toBe(true);
  return { version, metadata, tensors, dataStart: p + pad };
}

const tensor = (name: string, dims: number[], type: GgufTensor['type'] = 'F32'): GgufTensor => {
  const n = dims.reduce((a, b) => a * b, 1);
  return { name, dims, type, data: Float32Array.from({ length: n }, (_, i) => i * 0.5 - 1) };
};

const SPEC: GgufFileSpec = {
  metadata: {
    'general.architecture': kv.string('llama'),
    'test.u8': kv.uint8(255),
    'test.i8': kv.int8(-128),
    'test.u16': kv.uint16(65535),
    'test.i16': kv.int16(-32768),
    'test.u32': kv.uint32(4294967295),
    'test.i32': kv.int32(-2147483648),
    'test.f32': kv.float32(1.5),
    'test.f64': kv.float64(Math.PI),
    'test.u64': kv.uint64(18446744073709551615n),
    'test.i64': kv.int64(-9223372036854775808n),
    'test.bool_true': kv.bool(true),
    'test.bool_false': kv.bool(false),
    'test.string': kv.string('héllo ▁wörld'),
    'test.empty_string': kv.string(''),
    'test.strings': kv.array('string', ['a', '', '<0x0A>', '▁the']),
    'test.floats': kv.array('float32', [0.25, -2, 3.5]),
    'test.ints': kv.array('int32', [-1, 0, 1]),
    'test.empty': kv.array('uint8', []),
    'test.nested': kv.nestedArray([kv.array('uint16', [1, 2]), kv.array('uint16', [3])]),
  },
  tensors: [tensor('a.weight', [3]), tensor('b.weight', [4, 5]), tensor('c.weight', [2, 3, 2], 'F16')],
};

describe('encodeGguf', () => {
  const bytes = encodeGguf(SPEC);
  const parsed = parseGguf(bytes);

  it('writes a v3 header with the tensor and kv counts', () => {
    expect(parsed.version).toBe(3);
    expect(parsed.tensors).toHaveLength(3);
    expect(parsed.metadata.size).toBe(Object.keys(SPEC.metadata).length);
    // tensor_count and kv_count are u64 right after magic and version.
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    expect(view.getBigUint64(8, true)).toBe(3n);
    expect(view.getBigUint64(16, true)).toBe(BigInt(Object.keys(SPEC.metadata).length));
  });

  it('round-trips every metadata value type in order', () => {
    expect([...parsed.metadata.keys()]).toEqual(Object.keys(SPEC.metadata));
    const v = (k: string) => parsed.metadata.get(k);
    expect(v('test.u8')).toEqual({ type: 0, value: 255 });
    expect(v('test.i8')).toEqual({ type: 1, value: -128 });
    expect(v('test.u16')).toEqual({ type: 2, value: 65535 });
    expect(v('test.i16')).toEqual({ type: 3, value: -32768 });
    expect(v('test.u32')).toEqual({ type: 4, value: 4294967295 });
    expect(v('test.i32')).toEqual({ type: 5, value: -2147483648 });
    expect(v('test.f32')).toEqual({ type: 6, value: 1.5 });
    expect(v('test.bool_true')).toEqual({ type: 7, value: true });
    expect(v('test.bool_false')).toEqual({ type: 7, value: false });
    expect(v('test.string')).toEqual({ type: 8, value: 'héllo ▁wörld' });
    expect(v('test.empty_string')).toEqual({ type: 8, value: '' });
    expect(v('test.strings')).toEqual({ type: 9, value: ['a', '', '<0x0A>', '▁the'] });
    expect(v('test.floats')).toEqual({ type: 9, value: [0.25, -2, 3.5] });
    expect(v('test.ints')).toEqual({ type: 9, value: [-1, 0, 1] });
    expect(v('test.empty')).toEqual({ type: 9, value: [] });
    expect(v('test.nested')).toEqual({ type: 9, value: [[1, 2], [3]] });
    expect(v('test.u64')).toEqual({ type: 10, value: 18446744073709551615n });
    expect(v('test.i64')).toEqual({ type: 11, value: -9223372036854775808n });
    expect(v('test.f64')).toEqual({ type: 12, value: Math.PI });
  });

  it('writes tensor infos with ne[0]-first dims, types and aligned offsets', () => {
    expect(parsed.tensors.map((t) => [t.name, t.dims, t.type])).toEqual([
      ['a.weight', [3n], 0],
      ['b.weight', [4n, 5n], 0],
      ['c.weight', [2n, 3n, 2n], 1],
    ]);
    // a: 12 bytes -> padded to 32; b: 80 bytes -> padded to 128; c starts at 32 + 96.
    expect(parsed.tensors.map((t) => t.offset)).toEqual([0n, 32n, 128n]);
    expect(parsed.dataStart % 32).toBe(0);
    // Each tensor region is padded, the last one included.
    expect(bytes.length).toBe(parsed.dataStart + 128 + 32);
  });

  it('stores F32 data little-endian and F16 data as IEEE half floats', () => {
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const b = parsed.tensors[1];
    const c = parsed.tensors[2];
    if (!b || !c) throw new Error('missing tensors');
    const bStart = parsed.dataStart + Number(b.offset);
    expect(Array.from({ length: 20 }, (_, i) => view.getFloat32(bStart + i * 4, true))).toEqual(
      Array.from({ length: 20 }, (_, i) => i * 0.5 - 1),
    );
    const cStart = parsed.dataStart + Number(c.offset);
    expect(Array.from({ length: 12 }, (_, i) => view.getUint16(cStart + i * 2, true))).toEqual(
      Array.from({ length: 12 }, (_, i) => float32ToFloat16Bits(i * 0.5 - 1)),
    );
    // Padding between tensors is zero.
    const aEnd = parsed.dataStart + 12;
    expect([...bytes.subarray(aEnd, parsed.dataStart + 32)].every((x) => x === 0)).toBe(true);
  });

  it('honours general.alignment', () => {
    const spec: GgufFileSpec = {
      metadata: { 'general.alignment': kv.uint32(64), 'general.architecture': kv.string('llama') },
      tensors: [tensor('x', [5]), tensor('y', [7])],
    };
    const out = parseGguf(encodeGguf(spec), 64);
    expect(out.dataStart % 64).toBe(0);
    expect(out.tensors.map((t) => t.offset)).toEqual([0n, 64n]);
  });

  it('is deterministic', () => {
    expect(Buffer.from(encodeGguf(SPEC)).equals(Buffer.from(bytes))).toBe(true);
  });
});

describe('encodeGguf validation', () => {
  const base = { metadata: { 'general.architecture': kv.string('llama') }, tensors: [] } satisfies GgufFileSpec;
  const fails = (spec: GgufFileSpec, message: RegExp) => expect(() => encodeGguf(spec)).toThrowError(message);

  it('rejects out-of-range and non-integer values', () => {
    fails({ ...base, metadata: { 'a.b': kv.uint8(256) } }, /not a valid uint8/);
    fails({ ...base, metadata: { 'a.b': kv.int32(1.5) } }, /not a valid int32/);
    fails({ ...base, metadata: { 'a.b': kv.uint64(-1n) } }, /not a valid uint64/);
    fails({ ...base, metadata: { 'a.b': kv.array('uint32', [1, -1]) } }, /not a valid uint32/);
  });

  it('rejects keys that are not lower_snake_case dotted paths', () => {
    fails({ ...base, metadata: { 'General.Name': kv.string('x') } }, /invalid metadata key/);
    fails({ ...base, metadata: { 'a..b': kv.string('x') } }, /invalid metadata key/);
  });

  it('rejects bad alignment', () => {
    fails({ ...base, metadata: { 'general.alignment': kv.uint32(12) } }, /power of two/);
    fails({ ...base, metadata: { 'general.alignment': kv.uint64(32n) } }, /must be a uint32/);
  });

  it('rejects malformed tensors', () => {
    fails({ ...base, tensors: [{ name: 't', dims: [2, 2], type: 'F32', data: new Float32Array(3) }] }, /hold 4 values/);
    fails({ ...base, tensors: [tensor('t', [1]), tensor('t', [1])] }, /duplicate tensor name/);
    fails({ ...base, tensors: [tensor('t', [1, 1, 1, 1, 1])] }, /5 dims/);
    fails({ ...base, tensors: [tensor('t', [0])] }, /bad dimension/);
    fails({ ...base, tensors: [tensor('x'.repeat(64), [1])] }, /name too long/);
  });

  it('throws GgufWriteError', () => {
    expect(() => encodeGguf({ ...base, metadata: { 'a.b': kv.int8(200) } })).toThrow(GgufWriteError);
  });
});

describe('float32ToFloat16Bits', () => {
  it.each([
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest half
    [65520, 0x7c00], // rounds up to +Inf
    [1e6, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // ties to even -> 0
    [3 * 2 ** -26, 0x0001], // above the tie -> rounds up
    [0.1, 0x2e66],
    [1 + 2 ** -11, 0x3c00], // tie between 1 and next: even mantissa wins
    [1 + 3 * 2 ** -11, 0x3c02], // tie, odd lower neighbour -> rounds up to even
  ])('%d -> %i', (input, bits) => {
    expect(float32ToFloat16Bits(input)).toBe(bits);
  });

  it('keeps NaN a NaN', () => {
    const h = float32ToFloat16Bits(Number.NaN);
    expect(h & 0x7c00).toBe(0x7c00);
    expect(h & 0x3ff).not.toBe(0);
  });
});

describe('writeGgufFile + node-llama-cpp readGgufFileInfo', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gguf-writer-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('produces a file node-llama-cpp parses identically', async () => {
    const path = join(dir, 'nested', 'test.gguf');
    const size = await writeGgufFile(path, SPEC);
    expect((await readFile(path)).length).toBe(size);

    const info = await readGgufFileInfo(path, { logWarnings: false });
    expect(info.version).toBe(3);
    expect(Number(info.tensorCount)).toBe(3);
    const md = info.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(md['general']?.['architecture']).toBe('llama');
    expect(md['test']?.['string']).toBe('héllo ▁wörld');
    expect(md['test']?.['strings']).toEqual(['a', '', '<0x0A>', '▁the']);
    expect(md['test']?.['u64']).toBe(18446744073709551615n);
    expect(md['test']?.['bool_false']).toBe(false);
    expect(info.tensorInfo?.map((t) => [t.name, t.dimensions.map(Number), t.ggmlType, Number(t.offset)])).toEqual([
      ['a.weight', [3], 0, 0],
      ['b.weight', [4, 5], 0, 32],
      ['c.weight', [2, 3, 2], 1, 128],
    ]);
  });
});

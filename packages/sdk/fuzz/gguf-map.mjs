/**
 * Where every field of a valid GGUF header lies, so that mutations can rewrite counts, lengths, types,
 * offsets and dims exactly (the fuzzer's "map") and tests can make one precise edit in memory.
 */

const SCALAR_SIZE = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8]; // by GGUF value type id; 0 for str and arr
export const TYPE = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, str: 8, arr: 9, u64: 10, i64: 11, f64: 12 };

/**
 * @typedef {{ offset: number, length: number }} Span  a string's bytes (after its u64 length at offset - 8)
 * @typedef {{ key: string, keyOffset: number, typeOffset: number, valueOffset: number, end: number,
 *   type: number, itemType?: number, countOffset?: number, items?: Span[], itemsOffset?: number }} KeyField
 * @typedef {{ name: string, nameOffset: number, nDimsOffset: number, dimOffsets: number[], typeOffset: number,
 *   offsetOffset: number, shape: number[], type: number, dataOffset: number }} TensorField
 * @typedef {{ alignment: number, headerEnd: number, dataStart: number, keys: KeyField[], tensors: TensorField[] }} GGUFMap
 */

/** @param {Buffer} b @returns {GGUFMap} */
export function mapGGUF(b) {
  let p = 24;
  const u64 = () => {
    const v = Number(b.readBigUInt64LE(p));
    p += 8;
    return v;
  };
  const str = () => {
    const n = u64();
    const span = { offset: p, length: n };
    p += n;
    return span;
  };
  const text = (s) => b.toString("utf8", s.offset, s.offset + s.length);
  const nTensors = Number(b.readBigUInt64LE(8));
  const nKv = Number(b.readBigUInt64LE(16));
  /** @type {KeyField[]} */
  const keys = [];
  let alignment = 32;
  for (let i = 0; i < nKv; i++) {
    const keyOffset = p;
    const key = text(str());
    const typeOffset = p;
    const type = b.readUInt32LE(p);
    p += 4;
    const valueOffset = p;
    /** @type {KeyField} */
    const field = { key, keyOffset, typeOffset, valueOffset, end: 0, type };
    if (type === TYPE.str) str();
    else if (type === TYPE.arr) {
      field.itemType = b.readUInt32LE(p);
      p += 4;
      field.countOffset = p;
      const n = u64();
      field.itemsOffset = p;
      if (field.itemType === TYPE.str) field.items = Array.from({ length: n }, str);
      else p += n * SCALAR_SIZE[field.itemType];
    } else p += SCALAR_SIZE[type];
    field.end = p;
    if (key === "general.alignment") alignment = b.readUInt32LE(valueOffset);
    keys.push(field);
  }
  /** @type {TensorField[]} */
  const tensors = [];
  for (let i = 0; i < nTensors; i++) {
    const nameOffset = p;
    const name = text(str());
    const nDimsOffset = p;
    const nDims = b.readUInt32LE(p);
    p += 4;
    const dimOffsets = [];
    const shape = [];
    for (let d = 0; d < nDims; d++) {
      dimOffsets.push(p);
      shape.push(u64());
    }
    const typeOffset = p;
    const type = b.readUInt32LE(p);
    p += 4;
    const offsetOffset = p;
    const dataOffset = u64();
    tensors.push({ name, nameOffset, nDimsOffset, dimOffsets, typeOffset, offsetOffset, shape, type, dataOffset });
  }
  const headerEnd = p;
  const dataStart = Math.ceil(headerEnd / alignment) * alignment;
  return { alignment, headerEnd, dataStart, keys, tensors };
}

/** @param {GGUFMap} map @param {string} key */
export function keyField(map, key) {
  const f = map.keys.find((k) => k.key === key);
  if (f === undefined) throw new Error(`no key ${key}`);
  return f;
}

/**
 * A new file from an edited header: the header bytes, padding to the alignment, then the original data
 * section, so an edit that changes the header's length keeps every tensor where its offset says.
 * @param {Buffer} original @param {GGUFMap} map @param {Buffer} header
 */
export function withHeader(original, map, header) {
  const start = Math.ceil(header.length / map.alignment) * map.alignment;
  const out = Buffer.alloc(start + (original.length - map.dataStart));
  header.copy(out, 0);
  original.copy(out, start, map.dataStart);
  return out;
}

/** One metadata entry's bytes. @param {string} key @param {number} type @param {Buffer} value */
export function encodeEntry(key, type, value) {
  const k = Buffer.from(key, "utf8");
  const out = Buffer.alloc(8 + k.length + 4 + value.length);
  out.writeBigUInt64LE(BigInt(k.length), 0);
  k.copy(out, 8);
  out.writeUInt32LE(type, 8 + k.length);
  value.copy(out, 12 + k.length);
  return out;
}

/** The file with one more metadata entry (appended after the last one). */
export function addEntry(original, map, entry) {
  const lastKeyEnd = map.keys.length > 0 ? map.keys[map.keys.length - 1].end : 24;
  const header = Buffer.concat([original.subarray(0, lastKeyEnd), entry, original.subarray(lastKeyEnd, map.headerEnd)]);
  header.writeBigUInt64LE(BigInt(map.keys.length + 1), 16);
  return withHeader(original, map, header);
}

/** The file with one metadata entry's bytes replaced (key, type and value). */
export function replaceEntry(original, map, field, entry) {
  const header = Buffer.concat([original.subarray(0, field.keyOffset), entry, original.subarray(field.end, map.headerEnd)]);
  return withHeader(original, map, header);
}

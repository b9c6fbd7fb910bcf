/**
 * GGUF v3 reader. Reads the header, metadata and tensor index (never the tensor data) and checks every
 * count and length against the bytes the file really has before allocating.
 */
import { ModelFormatError } from "../errors.js";
import { openForReading, readExactly } from "../files.js";
import { throwIfAborted } from "../validate.js";
import {
  GGML_MAX_DIMS,
  type GGMLTypeInfo,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  type GGUFNumericTypeName,
  type GGUFValue,
  type GGUFValueTypeName,
  ggmlTypes,
  numericArrayConstructors,
  scalarByteSize,
  valueTypeNames,
} from "./types.js";

export interface GGUFTensorInfo {
  name: string;
  /** ggml order: shape[0] is the fastest-varying dimension */
  shape: number[];
  type: GGMLTypeInfo;
  /** from the start of the data section */
  offset: number;
  /** from the start of the file */
  absoluteOffset: number;
  byteSize: number;
  elementCount: number;
}

export interface GGUFFile {
  path: string;
  version: number;
  fileSize: number;
  alignment: number;
  /** where the tensor data section starts */
  dataOffset: number;
  metadata: Map<string, GGUFValue>;
  tensors: GGUFTensorInfo[];
}

export interface ReadGGUFOptions {
  signal?: AbortSignal;
}

const FIRST_READ = 1 << 20;
const MAX_KEY_BYTES = 65_535;
const MAX_STRING_BYTES = 1 << 30;
const textDecoder = new TextDecoder("utf-8");

/** Thrown inside a parse when the bytes read so far end before the header does: read more and parse again. */
class NeedBytes {
  constructor(readonly upTo: number) {}
}

/**
 * Sequential little-endian reads over the first `bytes.length` bytes of a file of `fileSize` bytes.
 * Synchronous, so a header with a 257k-token vocabulary parses without an await per value.
 */
class Cursor {
  position = 0;

  constructor(
    private readonly bytes: Buffer,
    readonly fileSize: number,
    private readonly path: string,
  ) {}

  get remaining(): number {
    return this.fileSize - this.position;
  }

  fail(message: string): ModelFormatError {
    return new ModelFormatError(
      `Invalid GGUF file ${this.path}: ${message} (at byte ${this.position}). The file is damaged or not a GGUF model; download or convert it again.`,
    );
  }

  /** Checks that n bytes at the position exist in the file and have been read; returns the position. */
  private need(n: number, what: string): number {
    if (n > this.remaining) {
      throw this.fail(`truncated while reading ${what}: needs ${n} bytes, ${this.remaining} left`);
    }
    if (this.position + n > this.bytes.length) throw new NeedBytes(this.position + n);
    const at = this.position;
    this.position += n;
    return at;
  }

  u32(what: string): number {
    return this.bytes.readUInt32LE(this.need(4, what));
  }

  /** A u64 count or length, which must fit in a safe integer (anything larger cannot fit the file). */
  count(what: string): number {
    const value = this.bytes.readBigUInt64LE(this.need(8, what));
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      this.position -= 8;
      throw this.fail(`${what} is ${value}, far more than the file can hold`);
    }
    return Number(value);
  }

  bytesOf(n: number, what: string): Buffer {
    const at = this.need(n, what);
    return this.bytes.subarray(at, at + n);
  }

  string(what: string, maxBytes = MAX_STRING_BYTES): string {
    const length = this.count(`length of ${what}`);
    if (length > maxBytes) throw this.fail(`${what} claims ${length} bytes, more than the limit of ${maxBytes}`);
    if (length > this.remaining) throw this.fail(`${what} claims ${length} bytes but only ${this.remaining} remain`);
    return textDecoder.decode(this.bytesOf(length, what));
  }

  scalar(type: Exclude<GGUFValueTypeName, "str" | "arr">, what: string): number | bigint | boolean {
    const at = this.need(scalarByteSize[type], what);
    const b = this.bytes;
    switch (type) {
      case "u8":
        return b.readUInt8(at);
      case "i8":
        return b.readInt8(at);
      case "u16":
        return b.readUInt16LE(at);
      case "i16":
        return b.readInt16LE(at);
      case "u32":
        return b.readUInt32LE(at);
      case "i32":
        return b.readInt32LE(at);
      case "f32":
        return b.readFloatLE(at);
      case "f64":
        return b.readDoubleLE(at);
      case "u64":
        return b.readBigUInt64LE(at);
      case "i64":
        return b.readBigInt64LE(at);
      case "bool": {
        const v = b.readUInt8(at);
        if (v > 1) throw this.fail(`${what} is a bool with value ${v}`);
        return v === 1;
      }
    }
  }

  valueType(what: string): GGUFValueTypeName {
    const id = this.u32(`type of ${what}`);
    const name = valueTypeNames[id];
    if (name === undefined) throw this.fail(`${what} has unknown value type ${id}`);
    return name;
  }
}

function readValue(cursor: Cursor, type: GGUFValueTypeName, key: string): GGUFValue {
  if (type === "str") return { type, value: cursor.string(`value of ${key}`) };
  if (type !== "arr") {
    const value = cursor.scalar(type, `value of ${key}`);
    return { type, value } as GGUFValue;
  }
  const itemType = cursor.valueType(`items of ${key}`);
  const n = cursor.count(`length of array ${key}`);
  if (itemType === "arr") throw cursor.fail(`${key} is an array of arrays, which ggml does not read either`);
  // Each item takes at least this many bytes, so the file bounds the count before anything is allocated.
  const minItemBytes = itemType === "str" ? 8 : scalarByteSize[itemType];
  if (n * minItemBytes > cursor.remaining) {
    throw cursor.fail(
      `array ${key} claims ${n} items of ${itemType}, more than the ${cursor.remaining} remaining bytes can hold`,
    );
  }
  if (itemType === "str") {
    const items: string[] = new Array(n);
    for (let i = 0; i < n; i++) items[i] = cursor.string(`item ${i} of ${key}`);
    return { type: "arr", itemType, value: items };
  }
  if (itemType === "bool") {
    const items: boolean[] = new Array(n);
    for (let i = 0; i < n; i++) items[i] = cursor.scalar("bool", `item ${i} of ${key}`) as boolean;
    return { type: "arr", itemType, value: items };
  }
  const numeric = itemType as GGUFNumericTypeName;
  const Ctor = numericArrayConstructors[numeric];
  const out = new Ctor(n);
  // A copy: the typed array is little-endian like the file on every platform pali supports.
  new Uint8Array(out.buffer).set(cursor.bytesOf(n * scalarByteSize[numeric], `items of ${key}`));
  return { type: "arr", itemType: numeric, value: out } as GGUFValue;
}

function checkedProduct(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Parses the header, metadata and tensor index from the first bytes of a file; NeedBytes when they end early. */
function parse(bytes: Buffer, fileSize: number, path: string): GGUFFile {
  const cursor = new Cursor(bytes, fileSize, path);
  if (fileSize === 0) throw cursor.fail("the file is empty");
  if (fileSize < 4) throw cursor.fail(`the file has only ${fileSize} bytes`);

  const magic = cursor.u32("magic");
  if (magic !== GGUF_MAGIC) {
    const shown = Buffer.alloc(4);
    shown.writeUInt32LE(magic);
    throw cursor.fail(`wrong magic ${JSON.stringify(shown.toString("latin1"))}, expected "GGUF"`);
  }
  const version = cursor.u32("version");
  if (version !== GGUF_VERSION) {
    if (version === 0x03000000) throw cursor.fail("this is a big-endian GGUF file; pali reads little-endian GGUF only");
    if (version === 1 || version === 2) {
      throw cursor.fail(
        `GGUF version ${version} is not supported, only version 3; convert the model again with a current converter`,
      );
    }
    throw cursor.fail(`unknown GGUF version ${version}; pali reads version 3`);
  }
  const tensorCount = cursor.count("tensor count");
  const kvCount = cursor.count("metadata count");
  // Smallest metadata entry: key length (8) + 1-byte key + type (4) + 1-byte value.
  if (kvCount * 14 > cursor.remaining) {
    throw cursor.fail(`metadata count ${kvCount} needs more bytes than the ${cursor.remaining} left in the file`);
  }
  // Smallest tensor entry: name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8).
  if (tensorCount * 32 > cursor.remaining) {
    throw cursor.fail(`tensor count ${tensorCount} needs more bytes than the ${cursor.remaining} left in the file`);
  }

  const metadata = new Map<string, GGUFValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = cursor.string(`key of metadata entry ${i}`, MAX_KEY_BYTES);
    if (key.length === 0) throw cursor.fail(`metadata entry ${i} has an empty key`);
    // ggml finds keys with strcmp: one with a NUL inside would be read as the key before the NUL.
    if (key.includes("\0")) throw cursor.fail(`metadata key ${JSON.stringify(key)} contains a NUL byte`);
    if (metadata.has(key)) throw cursor.fail(`duplicated metadata key ${JSON.stringify(key)}`);
    const type = cursor.valueType(`metadata ${key}`);
    metadata.set(key, readValue(cursor, type, key));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignmentValue = metadata.get("general.alignment");
  if (alignmentValue !== undefined) {
    if (
      alignmentValue.type !== "u32" ||
      alignmentValue.value === 0 ||
      (alignmentValue.value & (alignmentValue.value - 1)) !== 0
    ) {
      throw cursor.fail(
        `general.alignment must be a power-of-two u32, got ${alignmentValue.type} ${String(alignmentValue.value)}`,
      );
    }
    alignment = alignmentValue.value;
  }

  const tensors: GGUFTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = cursor.string(`name of tensor ${i}`, MAX_KEY_BYTES);
    if (names.has(name)) throw cursor.fail(`duplicated tensor name ${JSON.stringify(name)}`);
    if (name.includes("\0")) throw cursor.fail(`tensor name ${JSON.stringify(name)} contains a NUL byte`);
    names.add(name);
    const nDims = cursor.u32(`dimension count of ${name}`);
    if (nDims < 1 || nDims > GGML_MAX_DIMS)
      throw cursor.fail(`tensor ${name} has ${nDims} dimensions (1 to ${GGML_MAX_DIMS} allowed)`);
    const shape: number[] = [];
    for (let d = 0; d < nDims; d++) shape.push(cursor.count(`dimension ${d} of ${name}`));
    const typeId = cursor.u32(`type of ${name}`);
    const type = ggmlTypes.get(typeId);
    if (type === undefined) throw cursor.fail(`tensor ${name} has unknown ggml type ${typeId}`);
    const offset = cursor.count(`offset of ${name}`);
    const elementCount = checkedProduct(shape);
    if (!Number.isSafeInteger(elementCount)) throw cursor.fail(`tensor ${name} has shape [${shape.join(", ")}], too large`);
    if ((shape[0] ?? 0) % type.blockSize !== 0) {
      throw cursor.fail(
        `tensor ${name}: first dimension ${shape[0]} is not a multiple of the ${type.name} block size ${type.blockSize}`,
      );
    }
    if (offset % alignment !== 0)
      throw cursor.fail(`tensor ${name} offset ${offset} is not a multiple of the alignment ${alignment}`);
    const byteSize = (elementCount / type.blockSize) * type.typeSize;
    tensors.push({ name, shape, type, offset, absoluteOffset: 0, byteSize, elementCount });
  }

  const dataOffset = Math.ceil(cursor.position / alignment) * alignment;
  if (tensors.length > 0 && dataOffset > fileSize) {
    throw cursor.fail(`the tensor data section would start at byte ${dataOffset}, past the end of the ${fileSize}-byte file`);
  }
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (const t of byOffset) {
    t.absoluteOffset = dataOffset + t.offset;
    if (t.offset < end) throw cursor.fail(`tensor ${t.name} at data offset ${t.offset} overlaps the tensor before it`);
    end = t.offset + t.byteSize;
    if (t.absoluteOffset + t.byteSize > fileSize) {
      throw cursor.fail(
        `tensor ${t.name} (${t.byteSize} bytes at byte ${t.absoluteOffset}) extends past the end of the ${fileSize}-byte file`,
      );
    }
  }
  return { path, version, fileSize, alignment, dataOffset, metadata, tensors };
}

/**
 * Parses a whole GGUF file held in memory (`path` only names it in messages). The fuzzing harness runs
 * every mutant through this; like readGGUF it throws nothing but ModelFormatError.
 */
export function parseGGUF(bytes: Uint8Array, path = "<memory>"): GGUFFile {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return parse(buffer, buffer.length, path);
}

/** Reads a GGUF v3 file's metadata and tensor index. Throws ModelFormatError for anything malformed. */
export async function readGGUF(path: string, options: ReadGGUFOptions = {}): Promise<GGUFFile> {
  const handle = await openForReading(path);
  try {
    const { size: fileSize } = await handle.stat();
    // Read a first piece, and more whenever the header turns out longer; every length was already checked
    // against the file size, so a read never exceeds the file.
    let length = Math.min(FIRST_READ, fileSize);
    for (;;) {
      throwIfAborted(options.signal);
      const bytes = await readExactly(
        handle,
        length,
        0,
        () => new ModelFormatError(`Invalid GGUF file ${path}: the file ended early while reading its header`),
      );
      try {
        return parse(bytes, fileSize, path);
      } catch (error) {
        if (!(error instanceof NeedBytes)) throw error;
        length = Math.min(fileSize, Math.max(error.upTo, length * 2));
      }
    }
  } finally {
    await handle.close();
  }
}

/** Reads one tensor's bytes (for files already read with readGGUF). */
export async function readTensorData(file: GGUFFile, tensor: GGUFTensorInfo): Promise<Buffer> {
  const handle = await openForReading(file.path);
  try {
    return await readExactly(
      handle,
      tensor.byteSize,
      tensor.absoluteOffset,
      () => new ModelFormatError(`${file.path} ended inside tensor ${tensor.name}; the file is truncated`),
    );
  } finally {
    await handle.close();
  }
}

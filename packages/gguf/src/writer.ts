/**
 * GGUF v3 writer. Streams tensor data tensor by tensor into a temporary file beside the target and
 * renames it into place only when everything was written, so a failure never leaves a partial file
 * under the final name.
 */
import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, rm } from "node:fs/promises";
import { InvalidArgumentError, IoError, PaliError, throwIfAborted } from "@pali/base";
import {
  GGML_MAX_DIMS,
  type GGMLTypeInfo,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  type GGUFValue,
  type GGUFValueTypeName,
  ggmlTypeByName,
  scalarByteSize,
  valueTypeNames,
} from "./types.js";

export type TensorDataSource = Uint8Array | (() => AsyncIterable<Uint8Array> | Iterable<Uint8Array>);

export interface GGUFTensorInput {
  name: string;
  /** a ggml type name ("f32", "q8_0", ...) or its info */
  type: string | GGMLTypeInfo;
  /** ggml order: shape[0] is the fastest-varying dimension */
  shape: readonly number[];
  /** the bytes, or a function producing them in pieces (read lazily, one tensor at a time) */
  data: TensorDataSource;
}

export interface WriteGGUFOptions {
  alignment?: number;
  signal?: AbortSignal;
  /** called after each tensor with bytes written so far and the total */
  onProgress?: (written: number, total: number) => void;
}

/** Growable little-endian byte buffer for the header. */
class ByteSink {
  private buffer = Buffer.alloc(64 * 1024);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.buffer.length) {
      const next = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + n));
      this.buffer.copy(next, 0, 0, this.length);
      this.buffer = next;
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  // reserve() may replace the buffer, so it must run before this.buffer is read.
  u32(v: number): void {
    const at = this.reserve(4);
    this.buffer.writeUInt32LE(v, at);
  }

  u64(v: number | bigint): void {
    const at = this.reserve(8);
    this.buffer.writeBigUInt64LE(BigInt(v), at);
  }

  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length);
    this.buffer.set(b, at);
  }

  string(s: string): void {
    const encoded = Buffer.from(s, "utf8");
    this.u64(encoded.length);
    this.bytes(encoded);
  }

  pad(alignment: number): void {
    const n = Math.ceil(this.length / alignment) * alignment - this.length;
    const at = this.reserve(n);
    this.buffer.fill(0, at, at + n);
  }

  scalar(type: Exclude<GGUFValueTypeName, "str" | "arr">, v: unknown, key: string): void {
    const bad = () => new InvalidArgumentError(`Expected a ${type} value for metadata ${key} but received ${String(v)}`);
    const int = (min: number, max: number) => {
      if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw bad();
      return v;
    };
    const at = this.reserve(scalarByteSize[type]);
    const b = this.buffer;
    switch (type) {
      case "u8":
        b.writeUInt8(int(0, 0xff), at);
        break;
      case "i8":
        b.writeInt8(int(-0x80, 0x7f), at);
        break;
      case "u16":
        b.writeUInt16LE(int(0, 0xffff), at);
        break;
      case "i16":
        b.writeInt16LE(int(-0x8000, 0x7fff), at);
        break;
      case "u32":
        b.writeUInt32LE(int(0, 0xffffffff), at);
        break;
      case "i32":
        b.writeInt32LE(int(-0x80000000, 0x7fffffff), at);
        break;
      case "f32":
        if (typeof v !== "number") throw bad();
        b.writeFloatLE(v, at);
        break;
      case "f64":
        if (typeof v !== "number") throw bad();
        b.writeDoubleLE(v, at);
        break;
      case "u64":
        if (typeof v !== "bigint" || v < 0n || v > 0xffffffffffffffffn) throw bad();
        b.writeBigUInt64LE(v, at);
        break;
      case "i64":
        if (typeof v !== "bigint" || v < -(1n << 63n) || v >= 1n << 63n) throw bad();
        b.writeBigInt64LE(v, at);
        break;
      case "bool":
        if (typeof v !== "boolean") throw bad();
        b.writeUInt8(v ? 1 : 0, at);
        break;
    }
  }

  value(key: string, value: GGUFValue): void {
    const typeId = valueTypeNames.indexOf(value.type);
    if (typeId < 0) throw new InvalidArgumentError(`Unknown GGUF value type ${String(value.type)} for metadata ${key}`);
    this.u32(typeId);
    if (value.type === "str") {
      if (typeof value.value !== "string") throw new InvalidArgumentError(`Expected a string value for metadata ${key}`);
      this.string(value.value);
    } else if (value.type === "arr") {
      const itemId = valueTypeNames.indexOf(value.itemType);
      if (itemId < 0 || value.itemType === ("arr" as string)) {
        throw new InvalidArgumentError(`Unsupported array item type ${String(value.itemType)} for metadata ${key}`);
      }
      this.u32(itemId);
      this.u64(value.value.length);
      if (value.itemType === "str") {
        for (const s of value.value) this.string(s);
      } else if (value.itemType === "bool") {
        for (const v of value.value) this.scalar("bool", v, key);
      } else {
        const view = value.value;
        this.bytes(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
      }
    } else {
      this.scalar(value.type, value.value, key);
    }
  }

  view(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

interface PlannedTensor {
  input: GGUFTensorInput;
  type: GGMLTypeInfo;
  byteSize: number;
  offset: number;
}

function planTensors(tensors: readonly GGUFTensorInput[], alignment: number): { planned: PlannedTensor[]; dataSize: number } {
  const names = new Set<string>();
  const planned: PlannedTensor[] = [];
  let offset = 0;
  for (const input of tensors) {
    if (typeof input.name !== "string" || input.name.length === 0)
      throw new InvalidArgumentError("Every tensor needs a non-empty name");
    if (names.has(input.name)) throw new InvalidArgumentError(`Tensor name ${input.name} is used twice`);
    names.add(input.name);
    const type = typeof input.type === "string" ? ggmlTypeByName.get(input.type.toLowerCase()) : input.type;
    if (type === undefined) throw new InvalidArgumentError(`Unknown ggml type ${String(input.type)} for tensor ${input.name}`);
    if (input.shape.length < 1 || input.shape.length > GGML_MAX_DIMS) {
      throw new InvalidArgumentError(
        `Tensor ${input.name} has ${input.shape.length} dimensions; 1 to ${GGML_MAX_DIMS} are allowed`,
      );
    }
    let elements = 1;
    for (const d of input.shape) {
      if (!Number.isInteger(d) || d < 0) throw new InvalidArgumentError(`Tensor ${input.name} has an invalid dimension ${d}`);
      elements *= d;
    }
    if ((input.shape[0] ?? 0) % type.blockSize !== 0) {
      throw new InvalidArgumentError(
        `Tensor ${input.name}: first dimension ${input.shape[0]} is not a multiple of the ${type.name} block size ${type.blockSize}`,
      );
    }
    const byteSize = (elements / type.blockSize) * type.typeSize;
    planned.push({ input, type, byteSize, offset });
    offset += Math.ceil(byteSize / alignment) * alignment;
  }
  return { planned, dataSize: offset };
}

function encodeHeader(metadata: Map<string, GGUFValue>, planned: PlannedTensor[], alignment: number): Buffer {
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(planned.length);
  sink.u64(metadata.size);
  for (const [key, value] of metadata) {
    if (key.length === 0) throw new InvalidArgumentError("Metadata keys must be non-empty");
    sink.string(key);
    sink.value(key, value);
  }
  for (const t of planned) {
    sink.string(t.input.name);
    sink.u32(t.input.shape.length);
    for (const d of t.input.shape) sink.u64(d);
    sink.u32(t.type.id);
    sink.u64(t.offset);
  }
  sink.pad(alignment);
  return sink.view();
}

async function writeAll(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await handle.write(data, written, data.length - written, position + written);
    written += bytesWritten;
  }
}

/**
 * Writes a GGUF v3 file: metadata in the given order, then the tensors, each aligned.
 * The file appears at `path` only once complete.
 */
export async function writeGGUF(
  path: string,
  metadata: Map<string, GGUFValue> | Iterable<[string, GGUFValue]>,
  tensors: readonly GGUFTensorInput[],
  options: WriteGGUFOptions = {},
): Promise<void> {
  const alignment = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new InvalidArgumentError(`Expected a power-of-two alignment but received ${alignment}`);
  }
  const kv = new Map<string, GGUFValue>();
  for (const [key, value] of metadata instanceof Map ? metadata.entries() : metadata) {
    if (kv.has(key)) throw new InvalidArgumentError(`Metadata key ${key} is given twice`);
    kv.set(key, value);
  }
  if (alignment !== GGUF_DEFAULT_ALIGNMENT) kv.set("general.alignment", { type: "u32", value: alignment });
  else kv.delete("general.alignment");

  const { planned, dataSize } = planTensors(tensors, alignment);
  const header = encodeHeader(kv, planned, alignment);
  const total = header.length + dataSize;

  const temp = `${path}.partial-${process.pid}-${randomBytes(4).toString("hex")}`;
  let handle: FileHandle | undefined;
  try {
    try {
      handle = await open(temp, "wx");
    } catch (cause) {
      throw new IoError(`Could not create ${temp}: ${(cause as Error).message}. Check that the folder exists and is writable.`, {
        cause,
      });
    }
    await writeAll(handle, header, 0);
    for (const t of planned) {
      throwIfAborted(options.signal);
      const start = header.length + t.offset;
      let written = 0;
      const pieces = t.input.data instanceof Uint8Array ? [t.input.data] : t.input.data();
      for await (const piece of pieces) {
        throwIfAborted(options.signal);
        if (written + piece.length > t.byteSize) {
          throw new InvalidArgumentError(`Tensor ${t.input.name} got more than its ${t.byteSize} bytes of ${t.type.name} data`);
        }
        await writeAll(handle, piece, start + written);
        written += piece.length;
      }
      if (written !== t.byteSize) {
        throw new InvalidArgumentError(
          `Tensor ${t.input.name} needs ${t.byteSize} bytes of ${t.type.name} data but got ${written}`,
        );
      }
      const padding = Math.ceil(t.byteSize / alignment) * alignment - t.byteSize;
      if (padding > 0) await writeAll(handle, new Uint8Array(padding), start + written);
      options.onProgress?.(start + t.byteSize + padding, total);
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, path);
  } catch (error) {
    await handle?.close().catch(() => {});
    await rm(temp, { force: true });
    if (error instanceof PaliError) throw error;
    throw new IoError(`Could not write ${path}: ${(error as Error).message}`, { cause: error });
  }
}

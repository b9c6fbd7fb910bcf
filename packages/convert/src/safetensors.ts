/**
 * safetensors reader: validates the header against the file before trusting any offset, and reads
 * tensor rows on demand so that no tensor has to be held whole.
 */
import { ModelFormatError, openForReading, readExactly } from "@pali/core";

export type SafetensorsDType = "F32" | "F16" | "BF16";
const dtypeBytes: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2 };

export interface SafetensorsTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** absolute byte offset of the data in the file */
  start: number;
  byteLength: number;
  file: string;
}

const MAX_HEADER_BYTES = 100 * 1024 * 1024;

function bad(path: string, message: string): ModelFormatError {
  return new ModelFormatError(
    `Invalid safetensors file ${path}: ${message}. The checkpoint is damaged or incomplete; download it again.`,
  );
}

/** Reads and validates the header of one .safetensors file. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsTensor[]> {
  const handle = await openForReading(path);
  try {
    const { size } = await handle.stat();
    if (size < 8) throw bad(path, `the file has only ${size} bytes`);
    const lengthBytes = Buffer.alloc(8);
    await handle.read(lengthBytes, 0, 8, 0);
    const headerLength = lengthBytes.readBigUInt64LE(0);
    if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, size - 8))) {
      throw bad(path, `the header claims ${headerLength} bytes but the file has ${size}`);
    }
    const headerBytes = Buffer.alloc(Number(headerLength));
    await handle.read(headerBytes, 0, headerBytes.length, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(headerBytes.toString("utf8")) as Record<string, unknown>;
    } catch (cause) {
      throw bad(path, `the header is not JSON (${(cause as Error).message})`);
    }
    if (typeof header !== "object" || header === null || Array.isArray(header))
      throw bad(path, "the header is not a JSON object");
    const dataStart = 8 + headerBytes.length;
    const tensors: SafetensorsTensor[] = [];
    for (const [name, entry] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e !== "object" || e === null) throw bad(path, `entry ${name} is not an object`);
      if (typeof e.dtype !== "string" || !Object.hasOwn(dtypeBytes, e.dtype)) {
        throw bad(path, `tensor ${name} has dtype ${String(e.dtype)}; pali reads F32, F16 and BF16 checkpoints`);
      }
      const dtype = e.dtype as SafetensorsDType;
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
        throw bad(path, `tensor ${name} has an invalid shape`);
      const shape = e.shape as number[];
      const offsets = e.data_offsets;
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
        throw bad(path, `tensor ${name} has invalid data_offsets`);
      }
      const [begin, end] = offsets as [number, number];
      const elements = shape.reduce((a, b) => a * b, 1);
      if (end < begin || end - begin !== elements * dtypeBytes[dtype]) {
        throw bad(
          path,
          `tensor ${name} of shape [${shape.join(", ")}] ${dtype} should take ${elements * dtypeBytes[dtype]} bytes, its offsets give ${end - begin}`,
        );
      }
      if (dataStart + end > size)
        throw bad(path, `tensor ${name} ends at byte ${dataStart + end}, past the end of the ${size}-byte file (truncated?)`);
      tensors.push({ name, dtype, shape, start: dataStart + begin, byteLength: end - begin, file: path });
    }
    const sorted = [...tensors].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1] as SafetensorsTensor;
      const cur = sorted[i] as SafetensorsTensor;
      if (cur.start < prev.start + prev.byteLength) throw bad(path, `tensors ${prev.name} and ${cur.name} overlap`);
    }
    return tensors;
  } finally {
    await handle.close();
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Widens raw little-endian F32/F16/BF16 bytes into float32 values (exact for every dtype). */
export function toFloat32(
  bytes: Uint8Array,
  dtype: SafetensorsDType,
  out: Float32Array = new Float32Array(bytes.length / dtypeBytes[dtype]),
): Float32Array {
  const n = bytes.length / dtypeBytes[dtype];
  if (dtype === "F32") {
    out.set(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));
    return out;
  }
  const halves = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  if (dtype === "BF16") {
    const bits = new Uint32Array(out.buffer, out.byteOffset, n);
    for (let i = 0; i < n; i++) bits[i] = (halves[i] as number) << 16;
    return out;
  }
  for (let i = 0; i < n; i++) out[i] = halfToFloat(halves[i] as number);
  return out;
}

/** Reads rows [firstRow, firstRow + rowCount) of a 2-D (or flattened) tensor as float32. */
export async function readRows(
  tensor: SafetensorsTensor,
  rowLength: number,
  firstRow: number,
  rowCount: number,
): Promise<Float32Array> {
  const bytesPerValue = dtypeBytes[tensor.dtype];
  const offset = tensor.start + firstRow * rowLength * bytesPerValue;
  const length = rowCount * rowLength * bytesPerValue;
  if (offset + length > tensor.start + tensor.byteLength) {
    throw new ModelFormatError(`${tensor.file}: rows ${firstRow}..${firstRow + rowCount} are outside tensor ${tensor.name}`);
  }
  const handle = await openForReading(tensor.file);
  try {
    const bytes = await readExactly(
      handle,
      length,
      offset,
      () => new ModelFormatError(`${tensor.file} ended inside tensor ${tensor.name}; the file is truncated`),
    );
    return toFloat32(bytes, tensor.dtype);
  } finally {
    await handle.close();
  }
}

/**
 * NumPy `.npz` / `.npy` reader: an .npz is a zip of `.npy` files, stored or deflated, as `numpy.savez` and
 * `numpy.savez_compressed` write them (zip64 records included). Every size and offset is checked against
 * the file before it is used; nothing is read whole except the central directory and the entries asked for.
 */
import { inflateRawSync } from "node:zlib";
import { ModelFormatError, openForReading, readExactly } from "@pali/core";

export type NpyDType = "<f2" | "<f4" | "<f8";
const dtypeBytes: Record<NpyDType, number> = { "<f2": 2, "<f4": 4, "<f8": 8 };

export interface NpyHeader {
  dtype: NpyDType;
  shape: number[];
  /** bytes before the data: magic, version, header length and header */
  dataOffset: number;
}

export interface NpyArray {
  /** the file's dtype; `data` holds the values as float32 (f2 exactly, f8 rounded to nearest) */
  dtype: NpyDType;
  shape: number[];
  data: Float32Array;
}

export interface NpzEntry {
  /** the array name: the zip entry's name without `.npy` */
  name: string;
  method: "stored" | "deflated";
  /** absolute offset of the entry's (compressed) bytes in the file */
  offset: number;
  compressedSize: number;
  size: number;
  crc32: number;
}

/** Largest .npy header pali accepts (numpy's own limit for reading is 10,000 bytes by default). */
const MAX_NPY_HEADER = 64 * 1024;
/** Largest single array pali reads from an npz (the mask VAE's biggest is 1 MiB). */
const MAX_ENTRY_BYTES = 1024 * 1024 * 1024;
const MAX_ENTRIES = 65536;
const MAX_CENTRAL_DIRECTORY = 64 * 1024 * 1024;

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_END = 0x06054b50;
const SIG_END64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;

function bad(path: string, message: string): ModelFormatError {
  return new ModelFormatError(`Invalid npz file ${path}: ${message}. Download the file again (or re-save it with numpy.savez).`);
}

function badNpy(what: string, message: string): ModelFormatError {
  return new ModelFormatError(`Invalid .npy data in ${what}: ${message}`);
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO-HDLC, as zip uses). node:zlib has crc32 only from Node 20.15. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = (crcTable[(crc ^ (bytes[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function u64(buffer: Buffer, at: number, path: string, what: string): number {
  const v = buffer.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(path, `${what} is ${v}, beyond any real file`);
  return Number(v);
}

/** Reads the zip central directory of an .npz and returns its `.npy` entries. */
export async function readNpzIndex(path: string): Promise<NpzEntry[]> {
  const handle = await openForReading(path);
  try {
    const { size } = await handle.stat();
    const truncated = () => bad(path, "the file ends early (truncated?)");
    if (size < 22) throw bad(path, `the file has only ${size} bytes, too few for a zip archive`);
    // End of central directory: 22 bytes plus a comment of up to 65535 bytes at the very end.
    const tailLength = Math.min(size, 22 + 65535);
    const tail = await readExactly(handle, tailLength, size - tailLength, truncated);
    let end = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === SIG_END && i + 22 + tail.readUInt16LE(i + 20) === tail.length) {
        end = i;
        break;
      }
    }
    if (end < 0) throw bad(path, "it is not a zip archive (no end-of-central-directory record)");
    const endAt = size - tailLength + end;
    if (tail.readUInt16LE(end + 4) !== 0 || tail.readUInt16LE(end + 6) !== 0)
      throw bad(path, "multi-volume zip archives are not supported");
    let count: number = tail.readUInt16LE(end + 10);
    let cdSize: number = tail.readUInt32LE(end + 12);
    let cdOffset: number = tail.readUInt32LE(end + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      // zip64: a locator just before the end record points at the zip64 end record.
      if (endAt < 20) throw bad(path, "the zip64 end-of-central-directory locator is missing");
      const locator = await readExactly(handle, 20, endAt - 20, truncated);
      if (locator.readUInt32LE(0) !== SIG_LOCATOR64) throw bad(path, "the zip64 end-of-central-directory locator is missing");
      const end64At = u64(locator, 8, path, "the zip64 end record offset");
      if (end64At + 56 > endAt - 20) throw bad(path, "the zip64 end-of-central-directory record lies outside the file");
      const end64 = await readExactly(handle, 56, end64At, truncated);
      if (end64.readUInt32LE(0) !== SIG_END64) throw bad(path, "the zip64 end-of-central-directory record is damaged");
      count = u64(end64, 32, path, "the entry count");
      cdSize = u64(end64, 40, path, "the central directory size");
      cdOffset = u64(end64, 48, path, "the central directory offset");
    }
    if (count > MAX_ENTRIES) throw bad(path, `it claims ${count} entries`);
    if (cdSize > MAX_CENTRAL_DIRECTORY || cdOffset + cdSize > endAt)
      throw bad(path, `the central directory (${cdSize} bytes at ${cdOffset}) lies outside the file`);
    const cd = await readExactly(handle, cdSize, cdOffset, truncated);

    const entries: NpzEntry[] = [];
    const names = new Set<string>();
    let at = 0;
    for (let i = 0; i < count; i++) {
      if (at + 46 > cd.length || cd.readUInt32LE(at) !== SIG_CENTRAL) throw bad(path, `central directory entry ${i} is damaged`);
      const flags = cd.readUInt16LE(at + 8);
      const method = cd.readUInt16LE(at + 10);
      const crc = cd.readUInt32LE(at + 16);
      let compressedSize: number = cd.readUInt32LE(at + 20);
      let entrySize: number = cd.readUInt32LE(at + 24);
      const nameLength = cd.readUInt16LE(at + 28);
      const extraLength = cd.readUInt16LE(at + 30);
      const commentLength = cd.readUInt16LE(at + 32);
      let localOffset: number = cd.readUInt32LE(at + 42);
      const next = at + 46 + nameLength + extraLength + commentLength;
      if (next > cd.length) throw bad(path, `central directory entry ${i} runs past the directory`);
      const fileName = cd.toString("utf8", at + 46, at + 46 + nameLength);
      // zip64 extended information: the 8-byte values of the fields that are 0xffffffff, in this order.
      const extra = cd.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength);
      for (let e = 0; e + 4 <= extra.length; ) {
        const id = extra.readUInt16LE(e);
        const length = extra.readUInt16LE(e + 2);
        if (e + 4 + length > extra.length) throw bad(path, `entry ${fileName} has a damaged extra field`);
        if (id === 0x0001) {
          let p = e + 4;
          const take = (what: string) => {
            if (p + 8 > e + 4 + length) throw bad(path, `entry ${fileName} has a short zip64 field`);
            const v = u64(extra, p, path, what);
            p += 8;
            return v;
          };
          if (entrySize === 0xffffffff) entrySize = take(`the size of ${fileName}`);
          if (compressedSize === 0xffffffff) compressedSize = take(`the compressed size of ${fileName}`);
          if (localOffset === 0xffffffff) localOffset = take(`the offset of ${fileName}`);
        }
        e += 4 + length;
      }
      at = next;
      if (fileName.endsWith("/")) continue; // a folder
      if (flags & 0x1) throw bad(path, `entry ${fileName} is encrypted`);
      if (method !== 0 && method !== 8)
        throw bad(
          path,
          `entry ${fileName} uses zip compression method ${method}; only stored (0) and deflated (8) are supported`,
        );
      if (method === 0 && compressedSize !== entrySize)
        throw bad(path, `stored entry ${fileName} has different compressed and uncompressed sizes`);
      if (entrySize > MAX_ENTRY_BYTES || compressedSize > MAX_ENTRY_BYTES + 65536)
        throw bad(path, `entry ${fileName} claims ${Math.max(entrySize, compressedSize)} bytes`);
      if (localOffset + 30 > cdOffset) throw bad(path, `entry ${fileName} starts outside the file`);
      const local = await readExactly(handle, 30, localOffset, truncated);
      if (local.readUInt32LE(0) !== SIG_LOCAL) throw bad(path, `the local header of ${fileName} is damaged`);
      const offset = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      if (offset + compressedSize > cdOffset)
        throw bad(path, `entry ${fileName} (${compressedSize} bytes at ${offset}) runs past the end of its data`);
      const localName = await readExactly(handle, local.readUInt16LE(26), localOffset + 30, truncated);
      if (localName.toString("utf8") !== fileName)
        throw bad(path, `the local header of ${fileName} names ${JSON.stringify(localName.toString("utf8"))}`);
      if (!fileName.endsWith(".npy")) continue;
      const name = fileName.slice(0, -4);
      if (names.has(name)) throw bad(path, `array ${name} appears twice`);
      names.add(name);
      entries.push({ name, method: method === 0 ? "stored" : "deflated", offset, compressedSize, size: entrySize, crc32: crc });
    }
    return entries;
  } finally {
    await handle.close();
  }
}

/** The uncompressed bytes of one entry, checked against its size and CRC. */
export async function readNpzEntry(path: string, entry: NpzEntry): Promise<Uint8Array> {
  const handle = await openForReading(path);
  let raw: Buffer;
  try {
    raw = await readExactly(handle, entry.compressedSize, entry.offset, () =>
      bad(path, `the file ends inside array ${entry.name} (truncated?)`),
    );
  } finally {
    await handle.close();
  }
  let bytes: Uint8Array = raw;
  if (entry.method === "deflated") {
    try {
      // maxOutputLength bounds the memory a damaged or hostile stream can take.
      bytes = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size) });
    } catch (cause) {
      throw bad(path, `array ${entry.name} does not inflate (${(cause as Error).message})`);
    }
  }
  if (bytes.length !== entry.size)
    throw bad(path, `array ${entry.name} has ${bytes.length} bytes, its header says ${entry.size}`);
  if (crc32(bytes) !== entry.crc32) throw bad(path, `array ${entry.name} fails its CRC check (damaged file)`);
  return bytes;
}

/** Parses the header of a .npy file: little-endian f2/f4/f8 in C order only. */
export function parseNpyHeader(bytes: Uint8Array, what: string): NpyHeader {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < 10 || buffer.toString("latin1", 0, 6) !== "\x93NUMPY") throw badNpy(what, "no .npy magic");
  const major = buffer[6] as number;
  let headerLength: number;
  let start: number;
  if (major === 1) {
    headerLength = buffer.readUInt16LE(8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (buffer.length < 12) throw badNpy(what, "the header is cut short");
    headerLength = buffer.readUInt32LE(8);
    start = 12;
  } else {
    throw badNpy(what, `.npy format version ${major}.${buffer[7]} is not supported (1, 2 and 3 are)`);
  }
  if (headerLength > MAX_NPY_HEADER || start + headerLength > buffer.length)
    throw badNpy(what, `the header claims ${headerLength} bytes but ${buffer.length - start} follow`);
  const header = buffer.toString(major === 3 ? "utf8" : "latin1", start, start + headerLength).trim();
  // A Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (128, 512), }
  const fields = new Map<string, string>();
  const plain = () => badNpy(what, `the header ${JSON.stringify(header.slice(0, 120))} is not a plain array header`);
  if (!header.startsWith("{") || !header.endsWith("}")) throw plain();
  const body = header.slice(1, -1).trim();
  const pair = /\s*'(descr|fortran_order|shape)'\s*:\s*('[^']*'|True|False|\([\d\s,]*\))\s*(?:,|$)/y;
  while (pair.lastIndex < body.length) {
    const m = pair.exec(body);
    if (!m || fields.has(m[1] as string)) throw plain();
    fields.set(m[1] as string, m[2] as string);
  }
  const descr = fields.get("descr")?.replace(/^'(.*)'$/, "$1");
  const fortran = fields.get("fortran_order");
  const shapeText = fields.get("shape")?.slice(1, -1);
  if (
    descr === undefined ||
    fields.get("descr") === descr ||
    (fortran !== "True" && fortran !== "False") ||
    shapeText === undefined
  )
    throw plain();
  if (fortran === "True") throw badNpy(what, "Fortran-order arrays are not supported; save it with numpy.ascontiguousarray");
  const dtype = descr === "=f4" || descr === "=f8" || descr === "=f2" ? (`<${descr.slice(1)}` as NpyDType) : descr;
  if (!Object.hasOwn(dtypeBytes, dtype))
    throw badNpy(what, `dtype ${descr} is not supported (little-endian float16, float32 or float64 are: <f2, <f4, <f8)`);
  const parts = shapeText.split(",").map((s) => s.trim());
  if (parts.at(-1) === "") parts.pop();
  const shape = parts.map((s) => {
    if (!/^\d+$/.test(s)) throw badNpy(what, `shape (${shapeText}) is not a tuple of integers`);
    const d = Number(s);
    if (!Number.isSafeInteger(d)) throw badNpy(what, `dimension ${s} is too large`);
    return d;
  });
  return { dtype: dtype as NpyDType, shape, dataOffset: start + headerLength };
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Parses a whole .npy file held in memory; the data must be exactly what the shape and dtype need. */
export function parseNpy(bytes: Uint8Array, what: string): NpyArray {
  const header = parseNpyHeader(bytes, what);
  const elements = header.shape.reduce((a, b) => a * b, 1);
  const itemSize = dtypeBytes[header.dtype];
  const have = bytes.length - header.dataOffset;
  if (!Number.isSafeInteger(elements * itemSize) || elements * itemSize !== have) {
    throw badNpy(
      what,
      `shape (${header.shape.join(", ")}) of ${header.dtype} needs ${elements * itemSize} bytes of data but ${have} follow the header`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + header.dataOffset, have);
  const data = new Float32Array(elements);
  if (header.dtype === "<f4") for (let i = 0; i < elements; i++) data[i] = view.getFloat32(i * 4, true);
  else if (header.dtype === "<f8") for (let i = 0; i < elements; i++) data[i] = view.getFloat64(i * 8, true);
  else for (let i = 0; i < elements; i++) data[i] = halfToFloat(view.getUint16(i * 2, true));
  return { dtype: header.dtype, shape: header.shape, data };
}

/** Reads one .npy file from disk. */
export async function readNpy(path: string): Promise<NpyArray> {
  const handle = await openForReading(path);
  try {
    const { size } = await handle.stat();
    if (size > MAX_ENTRY_BYTES) throw badNpy(path, `the file has ${size} bytes, more than pali reads`);
    return parseNpy(await readExactly(handle, size, 0, () => badNpy(path, "the file ends early")), path);
  } finally {
    await handle.close();
  }
}

/** An opened .npz: its index, and arrays read on demand. */
export class NpzFile {
  readonly path: string;
  readonly entries: ReadonlyMap<string, NpzEntry>;

  private constructor(path: string, entries: NpzEntry[]) {
    this.path = path;
    this.entries = new Map(entries.map((e) => [e.name, e]));
  }

  static async open(path: string): Promise<NpzFile> {
    return new NpzFile(path, await readNpzIndex(path));
  }

  get names(): string[] {
    return [...this.entries.keys()];
  }

  /** One array as float32; throws ModelFormatError when it is missing or damaged. */
  async read(name: string): Promise<NpyArray> {
    const entry = this.entries.get(name);
    if (!entry) throw new ModelFormatError(`${this.path} has no array ${name}`);
    return parseNpy(await readNpzEntry(this.path, entry), `${this.path}:${name}.npy`);
  }
}

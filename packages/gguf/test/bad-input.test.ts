/** The reader on damaged and hostile files: always a ModelFormatError naming the problem, never a crash or a huge allocation. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ModelFormatError } from "@pali/base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readGGUF, writeGGUF } from "../src/index.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pali-gguf-bad-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Little-endian byte builder for hand-made GGUF files. */
class Raw {
  parts: Buffer[] = [];
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint | number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.parts.push(b);
    return this;
  }
  str(s: string) {
    const e = Buffer.from(s);
    return this.u64(e.length).bytes(e);
  }
  bytes(b: Uint8Array) {
    this.parts.push(Buffer.from(b));
    return this;
  }
  header(tensors: bigint | number, kvs: bigint | number, version = 3) {
    return this.bytes(Buffer.from("GGUF")).u32(version).u64(tensors).u64(kvs);
  }
  /** a u32 metadata entry */
  kvU32(key: string, v: number) {
    return this.str(key).u32(4).u32(v);
  }
  /** a tensor info entry */
  tensor(name: string, shape: number[], type: number, offset: number | bigint) {
    this.str(name).u32(shape.length);
    for (const d of shape) this.u64(d);
    return this.u32(type).u64(offset);
  }
  pad(to = 32) {
    const len = this.parts.reduce((n, p) => n + p.length, 0);
    return this.bytes(Buffer.alloc((to - (len % to)) % to));
  }
  build() {
    return Buffer.concat(this.parts);
  }
}

async function expectFormatError(bytes: Uint8Array, pattern: RegExp): Promise<void> {
  const path = join(dir, `case-${Math.random().toString(36).slice(2)}.gguf`);
  await writeFile(path, bytes);
  const error = await readGGUF(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ModelFormatError);
  expect((error as ModelFormatError).code).toBe("ERR_MODEL_FORMAT");
  expect((error as Error).message).toMatch(pattern);
  expect((error as Error).message).toContain(path);
}

describe("readGGUF on bad input", () => {
  it("an empty file", () => expectFormatError(new Uint8Array(0), /empty/));
  it("a 3-byte file", () => expectFormatError(Buffer.from("GGU"), /only 3 bytes/));
  it("a truncated header", () =>
    expectFormatError(new Raw().bytes(Buffer.from("GGUF")).u32(3).u32(0).build(), /truncated while reading tensor count/));
  it("a wrong magic", () => expectFormatError(Buffer.from("\x89PNG\r\n\x1a\n-------------------------"), /wrong magic/));
  it("GGUF version 1", () => expectFormatError(new Raw().header(0, 0, 1).build(), /version 1 is not supported/));
  it("GGUF version 2", () => expectFormatError(new Raw().header(0, 0, 2).build(), /version 2 is not supported/));
  it("a big-endian file", () => expectFormatError(new Raw().header(0, 0, 0x03000000).build(), /big-endian/));
  it("an unknown version", () => expectFormatError(new Raw().header(0, 0, 99).build(), /unknown GGUF version 99/));

  it("a tensor count that would need terabytes", () =>
    expectFormatError(new Raw().header(1n << 40n, 0).build(), /tensor count 1099511627776 needs more bytes/));
  it("a tensor count past 2^53", () =>
    expectFormatError(new Raw().header(2n ** 64n - 1n, 0).build(), /tensor count is 18446744073709551615/));
  it("a metadata count that would need terabytes", () =>
    expectFormatError(new Raw().header(0, 1n << 42n).build(), /metadata count 4398046511104 needs more bytes/));
  it("a key length that would need terabytes", () =>
    expectFormatError(
      new Raw()
        .header(0, 1)
        .u64(1n << 41n)
        .u32(4)
        .u32(1)
        .build(),
      /key of metadata entry 0 claims 2199023255552 bytes/,
    ));
  it("a string value longer than the file", () =>
    expectFormatError(
      new Raw()
        .header(0, 1)
        .str("k")
        .u32(8)
        .u64(1n << 45n)
        .bytes(Buffer.alloc(8))
        .build(),
      /value of k claims 35184372088832 bytes/,
    ));
  it("an array count that would need terabytes", () =>
    expectFormatError(
      new Raw()
        .header(0, 1)
        .str("a")
        .u32(9)
        .u32(6)
        .u64(1n << 40n)
        .bytes(Buffer.alloc(16))
        .build(),
      /array a claims 1099511627776 items of f32/,
    ));
  it("a string array count that would need terabytes", () =>
    expectFormatError(
      new Raw()
        .header(0, 1)
        .str("a")
        .u32(9)
        .u32(8)
        .u64(1n << 50n)
        .bytes(Buffer.alloc(16))
        .build(),
      /array a claims/,
    ));
  it("an array of arrays", () =>
    expectFormatError(new Raw().header(0, 1).str("a").u32(9).u32(9).u64(1).bytes(Buffer.alloc(16)).build(), /array of arrays/));
  it("an unknown value type", () =>
    expectFormatError(new Raw().header(0, 1).str("k").u32(13).u32(0).build(), /unknown value type 13/));
  it("a bool that is neither 0 nor 1", () =>
    expectFormatError(new Raw().header(0, 1).str("k").u32(7).bytes(Uint8Array.of(2)).build(), /bool with value 2/));
  it("a duplicated key", () =>
    expectFormatError(new Raw().header(0, 2).kvU32("dup", 1).kvU32("dup", 2).build(), /duplicated metadata key "dup"/));
  it("an empty key", () => expectFormatError(new Raw().header(0, 1).kvU32("", 1).build(), /empty key/));
  it("an alignment that is not a power of two", () =>
    expectFormatError(new Raw().header(0, 1).kvU32("general.alignment", 24).build(), /general.alignment must be a power-of-two/));
  it("a duplicated tensor name", () =>
    expectFormatError(
      new Raw().header(2, 0).tensor("w", [4], 0, 0).tensor("w", [4], 0, 32).pad().bytes(Buffer.alloc(64)).build(),
      /duplicated tensor name "w"/,
    ));
  it("a tensor with 5 dimensions", () =>
    expectFormatError(
      new Raw().header(1, 0).tensor("w", [1, 1, 1, 1, 1], 0, 0).pad().bytes(Buffer.alloc(32)).build(),
      /5 dimensions/,
    ));
  it("a tensor with an unknown type", () =>
    expectFormatError(
      new Raw().header(1, 0).tensor("w", [4], 4, 0).pad().bytes(Buffer.alloc(32)).build(),
      /unknown ggml type 4/,
    ));
  it("a quantized tensor whose row is not whole blocks", () =>
    expectFormatError(
      new Raw().header(1, 0).tensor("w", [33], 8, 0).pad().bytes(Buffer.alloc(96)).build(),
      /not a multiple of the q8_0 block size 32/,
    ));
  it("a tensor shape too large to count", () =>
    expectFormatError(
      new Raw()
        .header(1, 0)
        .tensor("w", [2 ** 40, 2 ** 40], 0, 0)
        .pad()
        .build(),
      /too large/,
    ));
  it("a tensor offset past the end", () =>
    expectFormatError(
      new Raw()
        .header(1, 0)
        .tensor("w", [4], 0, 1n << 40n)
        .pad()
        .bytes(Buffer.alloc(16))
        .build(),
      /extends past the end/,
    ));
  it("a misaligned tensor offset", () =>
    expectFormatError(
      new Raw().header(1, 0).tensor("w", [4], 0, 8).pad().bytes(Buffer.alloc(64)).build(),
      /not a multiple of the alignment/,
    ));
  it("overlapping tensors", () =>
    expectFormatError(
      new Raw().header(2, 0).tensor("a", [16], 0, 0).tensor("b", [16], 0, 32).pad().bytes(Buffer.alloc(128)).build(),
      /overlaps/,
    ));
  it("a file cut inside the tensor data", () =>
    expectFormatError(
      new Raw().header(1, 0).tensor("w", [64], 0, 0).pad().bytes(Buffer.alloc(100)).build(),
      /extends past the end/,
    ));

  it("a missing file is an I/O error, not a format error", async () => {
    await expect(readGGUF(join(dir, "missing.gguf"))).rejects.toMatchObject({ code: "ERR_IO" });
  });

  it("random corruption of a valid file gives a valid result or a ModelFormatError, nothing else", async () => {
    const path = join(dir, "valid.gguf");
    await writeGGUF(
      path,
      [
        ["general.architecture", { type: "str", value: "gemma" }],
        ["v", { type: "arr", itemType: "str", value: ["a", "bb", "ccc"] }],
        ["f", { type: "arr", itemType: "f32", value: Float32Array.from([1, 2, 3]) }],
      ],
      [
        { name: "w", type: "f32", shape: [8, 2], data: new Uint8Array(64) },
        { name: "q", type: "q8_0", shape: [32], data: new Uint8Array(34) },
      ],
    );
    const valid = await readFile(path);
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const corrupt = join(dir, "corrupt.gguf");
    for (let round = 0; round < 300; round++) {
      const bytes = Buffer.from(valid);
      const flips = 1 + rand(4);
      for (let i = 0; i < flips; i++) bytes[rand(bytes.length)] = rand(256);
      const cut = rand(5) === 0 ? rand(bytes.length) : bytes.length;
      await writeFile(corrupt, bytes.subarray(0, cut));
      try {
        await readGGUF(corrupt);
      } catch (error) {
        if (!(error instanceof ModelFormatError)) throw error;
      }
    }
  });
});

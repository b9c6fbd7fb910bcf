import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGgufWithGgml } from "@pali/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GGUFTensorInput, type GGUFValue, readGGUF, readTensorData, summarize, writeGGUF } from "../src/index.js";
import { randomF32 } from "./helpers/tiny-gemma.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pali-gguf-rt-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const everyType: [string, GGUFValue][] = [
  ["t.u8", { type: "u8", value: 255 }],
  ["t.i8", { type: "i8", value: -128 }],
  ["t.u16", { type: "u16", value: 65535 }],
  ["t.i16", { type: "i16", value: -32768 }],
  ["t.u32", { type: "u32", value: 4294967295 }],
  ["t.i32", { type: "i32", value: -2147483648 }],
  ["t.f32", { type: "f32", value: Math.fround(2.5e-3) }],
  ["t.bool", { type: "bool", value: true }],
  ["t.str", { type: "str", value: "héllo ▁wörld \n <loc0042> 日本語 🙂" }],
  ["t.u64", { type: "u64", value: 18446744073709551615n }],
  ["t.i64", { type: "i64", value: -9223372036854775808n }],
  ["t.f64", { type: "f64", value: -1.2345678901234567e300 }],
  ["t.empty", { type: "str", value: "" }],
  ["a.u8", { type: "arr", itemType: "u8", value: Uint8Array.from([0, 1, 255]) }],
  ["a.i8", { type: "arr", itemType: "i8", value: Int8Array.from([-1, 2]) }],
  ["a.u16", { type: "arr", itemType: "u16", value: Uint16Array.from([7, 65535]) }],
  ["a.i16", { type: "arr", itemType: "i16", value: Int16Array.from([-7]) }],
  ["a.u32", { type: "arr", itemType: "u32", value: Uint32Array.from([1, 2, 3]) }],
  ["a.i32", { type: "arr", itemType: "i32", value: Int32Array.from([-1, 0, 1]) }],
  ["a.f32", { type: "arr", itemType: "f32", value: Float32Array.from([0.5, -0, 1e-30]) }],
  ["a.f64", { type: "arr", itemType: "f64", value: Float64Array.from([Math.PI]) }],
  ["a.u64", { type: "arr", itemType: "u64", value: BigUint64Array.from([1n, 2n ** 63n]) }],
  ["a.i64", { type: "arr", itemType: "i64", value: BigInt64Array.from([-(2n ** 62n)]) }],
  ["a.bool", { type: "arr", itemType: "bool", value: [true, false, true] }],
  ["a.str", { type: "arr", itemType: "str", value: ["<bos>", "", "▁a", "<seg127>"] }],
  ["a.empty", { type: "arr", itemType: "f32", value: new Float32Array(0) }],
];

function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

function tensors(): GGUFTensorInput[] {
  const q8 = new Uint8Array(2 * 34 * 3).map((_, i) => (i * 37) % 251);
  return [
    { name: "a.f32", type: "f32", shape: [5, 3], data: bytesOf(randomF32(15, 7)) },
    { name: "b.f16", type: "f16", shape: [4], data: Uint8Array.from([0, 60, 0, 64, 0, 0, 0, 188]) },
    { name: "c.q8_0", type: "q8_0", shape: [64, 3], data: q8 },
    // a tensor streamed in pieces
    {
      name: "d.streamed",
      type: "f32",
      shape: [8, 2, 2],
      data: function* () {
        const all = bytesOf(randomF32(32, 9));
        for (let i = 0; i < all.length; i += 40) yield all.subarray(i, i + 40);
      },
    },
  ];
}

describe("GGUF writer and reader", () => {
  for (const alignment of [32, 64]) {
    it(`round-trips every metadata type and tensor data (alignment ${alignment})`, async () => {
      const path = join(dir, `all-${alignment}.gguf`);
      await writeGGUF(path, everyType, tensors(), { alignment });
      const file = await readGGUF(path);

      expect(file.version).toBe(3);
      expect(file.alignment).toBe(alignment);
      const expected = new Map(everyType);
      if (alignment !== 32) expected.set("general.alignment", { type: "u32", value: alignment });
      expect(file.metadata).toEqual(expected);
      expect([...file.metadata.keys()].slice(0, everyType.length)).toEqual(everyType.map(([k]) => k));

      const input = tensors();
      expect(file.tensors.map((t) => [t.name, t.type.name, t.shape])).toEqual(input.map((t) => [t.name, t.type, t.shape]));
      for (const [i, t] of file.tensors.entries()) {
        expect(t.absoluteOffset % alignment).toBe(0);
        const source = input[i]?.data;
        const want = source instanceof Uint8Array ? source : Buffer.concat([...(source?.() as Iterable<Uint8Array>)]);
        expect(Buffer.compare(await readTensorData(file, t), Buffer.from(want))).toBe(0);
      }
      expect(summarize(file)).toMatchObject({
        tensorCount: 4,
        parameterCount: 15 + 4 + 192 + 32,
        tensorTypes: { f32: 2, f16: 1, q8_0: 1 },
      });

      // ggml's own reader sees the same header, offsets and sizes.
      const ggml = await readGgufWithGgml(path);
      expect(ggml.alignment).toBe(alignment);
      expect(ggml.dataOffset).toBe(file.dataOffset);
      expect(ggml.kv.map((kv) => [kv.key, kv.type])).toEqual([...file.metadata].map(([k, v]) => [k, v.type]));
      expect(ggml.tensors.map((t) => [t.name, t.offset, t.size])).toEqual(
        file.tensors.map((t) => [t.name, t.offset, t.byteSize]),
      );
      expect(ggml.kv.find((kv) => kv.key === "t.str")?.value).toBe(expected.get("t.str")?.value);
      expect(ggml.kv.find((kv) => kv.key === "t.u64")?.value).toBe("18446744073709551615");
    });
  }

  it("writes nothing under the final name when a tensor's data is short, and cleans up", async () => {
    const path = join(dir, "short.gguf");
    const bad: GGUFTensorInput[] = [{ name: "x", type: "f32", shape: [4], data: new Uint8Array(12) }];
    await expect(writeGGUF(path, [], bad)).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
      message: expect.stringMatching(/needs 16 bytes/),
    });
    expect(await readdir(dir)).not.toContain("short.gguf");
    expect((await readdir(dir)).filter((f) => f.includes(".partial"))).toEqual([]);
  });

  it("keeps an existing file intact when a rewrite fails midway", async () => {
    const path = join(dir, "keep.gguf");
    await writeGGUF(path, [["k", { type: "u32", value: 1 }]], []);
    const before = await stat(path);
    const failing: GGUFTensorInput[] = [
      {
        name: "x",
        type: "f32",
        shape: [4],
        data: async function* () {
          yield new Uint8Array(8);
          throw new Error("source failed");
        },
      },
    ];
    await expect(writeGGUF(path, [["k", { type: "u32", value: 2 }]], failing)).rejects.toMatchObject({ code: "ERR_IO" });
    expect((await stat(path)).size).toBe(before.size);
    expect((await readGGUF(path)).metadata.get("k")).toEqual({ type: "u32", value: 1 });
  });

  it("stops at an aborted signal", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(writeGGUF(join(dir, "aborted.gguf"), [], tensors(), { signal: controller.signal })).rejects.toMatchObject({
      code: "ERR_ABORTED",
    });
    expect(await readdir(dir)).not.toContain("aborted.gguf");
  });

  it("rejects invalid input to the writer with typed errors", async () => {
    const p = join(dir, "bad.gguf");
    await expect(writeGGUF(p, [["k", { type: "u8", value: 300 }]], [])).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(
      writeGGUF(
        p,
        [
          ["k", { type: "u8", value: 1 }],
          ["k", { type: "u8", value: 2 }],
        ],
        [],
      ),
    ).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(writeGGUF(p, [], [{ name: "q", type: "q8_0", shape: [30], data: new Uint8Array(0) }])).rejects.toMatchObject({
      message: expect.stringMatching(/block size 32/),
    });
    await expect(writeGGUF(p, [], [{ name: "q", type: "nope", shape: [1], data: new Uint8Array(4) }])).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
    });
    await expect(writeGGUF(join(dir, "no", "such", "dir.gguf"), [], [])).rejects.toMatchObject({ code: "ERR_IO" });
  });
});

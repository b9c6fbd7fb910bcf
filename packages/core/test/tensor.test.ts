import { describe, expect, it } from "vitest";
import { Tensor } from "../src/index.js";

describe("Tensor", () => {
  it("views existing memory without copying", () => {
    const buffer = new ArrayBuffer(4 * 6 + 8);
    const t = Tensor.from("f32", [2, 3], buffer, 8);
    t.data[0] = 1.5;
    expect(new Float32Array(buffer, 8, 1)[0]).toBe(1.5);
    expect(t.shape).toEqual([2, 3]);
    expect(t.size).toBe(6);
    expect(t.byteLength).toBe(24);

    const typed = new Int32Array(4);
    const v = Tensor.from("i32", [4], typed);
    expect(v.data).toBe(typed);
    const r = v.reshape([2, 2]);
    r.data[3] = 9;
    expect(typed[3]).toBe(9);
  });

  it("rejects a buffer too small, a wrong array kind, misalignment and bad shapes", () => {
    expect(() => Tensor.from("f32", [2, 3], new ArrayBuffer(20))).toThrow(/needs 24 bytes from offset 0 but the buffer has 20/);
    expect(() => Tensor.from("f32", [4], new Int32Array(4) as never)).toThrow(
      /Expected Float32Array for a f32 tensor but received Int32Array/,
    );
    expect(() => Tensor.from("f32", [4], new Float32Array(5))).toThrow(/has 4 elements but the data has 5/);
    expect(() => Tensor.from("f32", [1], new ArrayBuffer(8), 2)).toThrow(/aligned to 4 bytes/);
    expect(() => Tensor.from("f32", [-1], new ArrayBuffer(8))).toThrow(/shape\[0\]/);
    expect(() => Tensor.from("f32", [], new ArrayBuffer(8))).toThrow(/1 to 8 dimensions/);
    expect(() => Tensor.zeros("u8", [2, 2]).reshape([3])).toThrow(/Cannot reshape/);
    for (const call of [() => Tensor.from("f32", [2, 3], new ArrayBuffer(20))]) {
      expect(call).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
    }
  });

  it("makes zero-filled tensors of every dtype", () => {
    expect(Tensor.zeros("f16", [3]).data).toBeInstanceOf(Uint16Array);
    expect(Tensor.zeros("bf16", [3]).byteLength).toBe(6);
    expect(Array.from(Tensor.zeros("u8", [2, 2]).data)).toEqual([0, 0, 0, 0]);
  });
});

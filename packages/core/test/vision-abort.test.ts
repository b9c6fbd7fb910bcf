/** An image encode in progress stops on its AbortSignal or on dispose(), and the model stays correct after. */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { VisionModel } from "../src/index.js";

const mmproj = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "models", "demo", "mmproj-pali-demo-f16.gguf");

describe("VisionModel.encode abort", () => {
  it("stops a long encode on its signal with ERR_ABORTED, and encodes correctly afterwards", async () => {
    const vm = await VisionModel.load(mmproj, { gpu: false });
    const size = vm.info().imageSize;
    const one = new Float32Array(3 * size * size).map((_, i) => Math.sin(i) * 0.9);
    const expected = (await vm.encode(one, 1, { threads: 1 })).data;
    // 512 images in one graph: seconds of work, so the abort lands while it runs.
    const many = new Float32Array(512 * one.length);
    for (let i = 0; i < 512; i++) many.set(one, i * one.length);
    const controller = new AbortController();
    const started = performance.now();
    const pending = vm.encode(many, 512, { threads: 1, signal: controller.signal });
    setTimeout(() => controller.abort(), 30);
    await expect(pending).rejects.toMatchObject({ code: "ERR_ABORTED" });
    const abortedAfter = performance.now() - started;
    const again = (await vm.encode(one, 1, { threads: 1 })).data;
    expect(again).toEqual(expected);
    await expect(vm.encode(one, 1, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: "ERR_ABORTED" });
    // For the record, not a bound: how long the whole batch would have taken.
    const t = performance.now();
    await vm.encode(many.subarray(0, 64 * one.length), 64, { threads: 1 });
    console.log(
      `aborted after ${abortedAfter.toFixed(0)} ms; 64 of the 512 images take ${(performance.now() - t).toFixed(0)} ms`,
    );
    vm.dispose();
  });

  it("encodes the largest batch it accepts (1024 images: once a segfault from fixed graph sizes)", async () => {
    const vm = await VisionModel.load(mmproj, { gpu: false });
    const size = vm.info().imageSize;
    const one = new Float32Array(3 * size * size).map((_, i) => Math.cos(i) * 0.5);
    const first = (await vm.encode(one, 1, { threads: 2 })).data;
    const many = new Float32Array(1024 * one.length);
    many.set(one, 1023 * one.length);
    const out = await vm.encode(many, 1024, { threads: 2 });
    expect(out.shape).toEqual([1024, 64, 128]);
    const last = out.data.subarray(1023 * 64 * 128);
    expect(Math.max(...last.map((v, i) => Math.abs(v - (first[i] as number))))).toBeLessThan(1e-4);
    vm.dispose();
  }, 120_000);

  it("dispose() aborts the encode in flight (ERR_DISPOSED) and frees the weights after it", async () => {
    const vm = await VisionModel.load(mmproj, { gpu: false });
    const size = vm.info().imageSize;
    const many = new Float32Array(512 * 3 * size * size);
    const pending = vm.encode(many, 512, { threads: 1 });
    setTimeout(() => vm.dispose(), 30);
    await expect(pending).rejects.toMatchObject({ code: "ERR_DISPOSED" });
    expect(vm.disposed).toBe(true);
    expect(() => vm.info()).toThrow(expect.objectContaining({ code: "ERR_DISPOSED" }));
    vm.dispose();
  });
});

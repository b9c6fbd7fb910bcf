/**
 * One lifetime rule for native handles: a text model disposed while a context uses it keeps its weights until
 * the context goes (the context keeps working), and disposed handles say ERR_DISPOSED.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { Context, fromNativeError, loadNative, TextModel } from "../src/index.js";

const demo = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "models", "demo", "pali-demo-q8_0.gguf");
const params = { maxTokens: 4, temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, repeatLastN: 64, seed: 0 };

async function answer(context: Awaited<ReturnType<ReturnType<typeof loadNative>["Context"]["create"]>>) {
  const embeddings = new Float32Array(64 * 128).map((_, i) => Math.sin(i) * 0.1);
  await context.prefill(embeddings, 64, Int32Array.from([2, 100, 108]));
  return Array.from((await context.generate(params, null)).tokens);
}

it("a text model disposed under a live context keeps serving it, then frees; disposed handles are ERR_DISPOSED", async () => {
  const text = await TextModel.load(demo);
  const options = { nCtx: 128, threads: 1, flashAttn: false, kvF32: true, beamsMax: 1, nUbatch: 128 };
  const context = await loadNative().Context.create(text.handle, options);
  const before = await answer(context);
  text.dispose();
  expect(() => text.info()).toThrow(expect.objectContaining({ code: "ERR_DISPOSED" }));
  expect(await answer(context)).toEqual(before); // the weights are still there
  context.dispose();
  const error = await answer(context).catch((e: unknown) => fromNativeError(e, "after dispose"));
  expect(error).toMatchObject({ code: "ERR_DISPOSED" });
  text.dispose(); // idempotent
});

it("Context: a signal aborts only its own request; dispose() during work aborts it and frees the context after", async () => {
  await using text = await TextModel.load(demo);
  const ctx = await Context.create(text, {
    contextSize: 128,
    threads: 1,
    flashAttention: false,
    kvF32: true,
    maxBeams: 1,
    batchSize: 128,
  });
  const embeddings = new Float32Array(64 * 128).map((_, i) => Math.sin(i) * 0.1);
  const request = (maxTokens: number) => async () => {
    await ctx.prefill(embeddings, 64, Int32Array.from([2, 100, 108]));
    return ctx.generate({ ...params, maxTokens }, null);
  };
  await expect(ctx.run(AbortSignal.abort(), request(4))).rejects.toMatchObject({ message: expect.stringMatching(/abort/i) });
  const next = await ctx.run(undefined, request(4)); // the abort did not outlive its request
  expect(next.tokens.length).toBeGreaterThan(0);
  expect(["eos", "length"]).toContain(next.finishReason);
  const running = ctx.run(undefined, request(100)).then(
    (r) => r.finishReason,
    (e: unknown) => fromNativeError(e, "generate").code,
  );
  ctx.dispose();
  expect(ctx.disposed).toBe(true);
  expect(["aborted", "ERR_ABORTED", "eos"]).toContain(await running);
  expect(() => ctx.timings()).toThrow(expect.objectContaining({ code: "ERR_DISPOSED" }));
  await expect(ctx.run(undefined, request(1))).rejects.toMatchObject({ code: "ERR_DISPOSED" });
});

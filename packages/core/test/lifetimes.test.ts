/**
 * One lifetime rule for native handles: a text model disposed while a context uses it keeps its weights until
 * the context goes (the context keeps working), and disposed handles say ERR_DISPOSED.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { fromNativeError, loadNative, TextModel } from "../src/index.js";

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

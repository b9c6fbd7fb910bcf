/** The SDK as a user meets it: bad input, abort, dispose, concurrency, a free event loop. */
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { TextModel } from "@pali/core";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PaliGemma } from "../src/index.js";
import { ConvertedFixtures, references } from "./helpers.js";

const fx = new ConvertedFixtures();
const photo = join(references, "images", "astronaut.png");
let pg: PaliGemma;
let files224: { model: string; mmproj: string };
let files448: { model: string; mmproj: string };

beforeAll(async () => {
  await fx.init();
  files224 = await fx.convert("pg2-224", "q8_0", "f16");
  files448 = await fx.convert("pg1-448", "q8_0", "f16");
  pg = await PaliGemma.load({ ...files224, threads: 2 });
});
afterAll(async () => {
  await pg?.dispose();
  await fx.cleanup();
});

describe("requests", () => {
  it("generates, streams the same text, and reuses an encoded image", async () => {
    const r = await pg.generate({ image: photo, prompt: "caption en", maxTokens: 6 });
    expect(r.tokens.length).toBeGreaterThan(0);
    expect(r.finishReason === "length" || r.finishReason === "eos").toBe(true);
    expect(r.timings.prefillTokens).toBe(256 + 1 + pg.tokenizer.encode("caption en\n").length);
    let streamed = "";
    const tokens: number[] = [];
    for await (const chunk of pg.stream({ image: photo, prompt: "caption en", maxTokens: 6 })) {
      streamed += chunk.text;
      tokens.push(chunk.token);
    }
    expect(tokens).toEqual(r.tokens);
    expect(streamed).toBe(r.text);
    const embeddings = await pg.encodeImage(photo);
    expect(embeddings.shape).toEqual([256, 64]);
    const again = await pg.generate({ image: embeddings, prompt: "caption en", maxTokens: 6 });
    expect(again.tokens).toEqual(r.tokens);
  });

  it("serves concurrent requests in turn, each as if alone", async () => {
    const prompts = ["caption en", "detect cat ; dog", "answer en what is this?"];
    const alone = [];
    for (const prompt of prompts) alone.push((await pg.generate({ image: photo, prompt, maxTokens: 5 })).tokens);
    const together = await Promise.all(prompts.map((prompt) => pg.generate({ image: photo, prompt, maxTokens: 5 })));
    expect(together.map((r) => r.tokens)).toEqual(alone);
  });

  it("scores long suffixes in chunks with the same log-probabilities as short ones", async () => {
    const words = Array.from({ length: 60 }, (_, i) => `w${i % 7}`).join(" ");
    const long = await pg.score({ image: photo, prompt: "caption en", suffix: words });
    const short = await pg.score({ image: photo, prompt: "caption en", suffix: words.split(" ").slice(0, 20).join(" ") });
    expect(long.tokens.length).toBeGreaterThan(64);
    const n = short.tokens.length - 1; // all but <eos>
    expect(long.tokens.slice(0, n)).toEqual(short.tokens.slice(0, n));
    for (let i = 0; i < n; i++) expect(long.logprobs[i]).toBeCloseTo(short.logprobs[i] as number, 4);
  });

  it("stops at stop strings and at the token limit", async () => {
    const r = await pg.generate({ image: photo, prompt: "caption en", maxTokens: 6 });
    const first = pg.tokenizer.decode(r.tokens.slice(0, 2));
    if (first.length > 0) {
      const stopped = await pg.generate({ image: photo, prompt: "caption en", maxTokens: 6, stop: [first] });
      expect(stopped.finishReason).toBe("stop");
      expect(stopped.text).toBe("");
    }
    const one = await pg.generate({ image: photo, prompt: "caption en", maxTokens: 1 });
    expect(one.tokens.length).toBe(1);
  });

  it("keeps the event loop free while generating", async () => {
    await using big = await PaliGemma.load({ ...files448, threads: 2 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 2);
    await big.generate({ image: photo, prompt: "caption en", maxTokens: 24 });
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(2);
  });

  it("aborts within one token, and the model serves the next request correctly", async () => {
    const expected = await pg.generate({ image: photo, prompt: "caption en", maxTokens: 20 });
    const controller = new AbortController();
    let seen = 0;
    const consume = async () => {
      for await (const _ of pg.stream({ image: photo, prompt: "caption en", maxTokens: 200, signal: controller.signal })) {
        seen++;
        if (seen === 2) controller.abort();
      }
    };
    await expect(consume()).rejects.toMatchObject({ code: "ERR_ABORTED" });
    expect(seen).toBeLessThanOrEqual(3);
    const after = await pg.generate({ image: photo, prompt: "caption en", maxTokens: 20 });
    expect(after.tokens).toEqual(expected.tokens);
    const pre = new AbortController();
    pre.abort();
    await expect(pg.generate({ image: photo, prompt: "caption en", signal: pre.signal })).rejects.toMatchObject({
      code: "ERR_ABORTED",
    });
  });
});

describe("bad input", () => {
  it("a non-image and a truncated JPEG", async () => {
    await expect(pg.generate({ image: Buffer.from("definitely not an image"), prompt: "caption en" })).rejects.toMatchObject({
      code: "ERR_IMAGE_DECODE",
    });
    const jpeg = await sharp(photo).jpeg().toBuffer();
    await expect(pg.generate({ image: jpeg.subarray(0, jpeg.length / 3), prompt: "caption en" })).rejects.toMatchObject({
      code: "ERR_IMAGE_DECODE",
    });
    await expect(pg.generate({ image: "/no/such/image.png", prompt: "caption en" })).rejects.toMatchObject({
      code: "ERR_IMAGE_DECODE",
    });
  });

  it("a 0×0 image, a 1×20000 image and a 30000×30000 image", async () => {
    await expect(
      pg.generate({ image: { data: new Uint8Array(0), width: 0, height: 0, channels: 3 }, prompt: "caption en" }),
    ).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    const tall = await sharp({ create: { width: 1, height: 20000, channels: 3, background: "#336699" } })
      .png()
      .toBuffer();
    const r = await pg.generate({ image: tall, prompt: "caption en", maxTokens: 2 });
    expect(r.tokens.length).toBe(2);
    // A PNG whose header claims 30000×30000: refused before any pixel is decoded.
    const png = Buffer.from(
      await sharp({ create: { width: 8, height: 8, channels: 3, background: "#000" } })
        .png()
        .toBuffer(),
    );
    png.writeUInt32BE(30000, 16);
    png.writeUInt32BE(30000, 20);
    png.writeUInt32BE(crc32(png.subarray(12, 29)) >>> 0, 29);
    await expect(pg.generate({ image: png, prompt: "caption en" })).rejects.toMatchObject({
      code: "ERR_IMAGE_DECODE",
      message: expect.stringMatching(/pixel limit/),
    });
  });

  it("a prompt that does not fit the context", async () => {
    await expect(pg.generate({ image: photo, prompt: "word ".repeat(5000) })).rejects.toMatchObject({
      code: "ERR_CONTEXT_OVERFLOW",
    });
    await expect(pg.score({ image: photo, prompt: "caption en", suffix: "word ".repeat(5000) })).rejects.toMatchObject({
      code: "ERR_CONTEXT_OVERFLOW",
    });
    expect((await pg.generate({ image: photo, prompt: "caption en", maxTokens: 2 })).tokens.length).toBe(2);
    // within the context, but longer than the prefix batch the model was loaded for
    const long = "w1 ".repeat(150);
    await expect(pg.generate({ image: photo, prompt: long, maxTokens: 2 })).rejects.toMatchObject({
      code: "ERR_CONTEXT_OVERFLOW",
      message: expect.stringMatching(/maxPromptTokens/),
    });
    await using roomy = await PaliGemma.load({ ...files224, threads: 2, maxPromptTokens: 512 });
    expect((await roomy.generate({ image: photo, prompt: long, maxTokens: 2 })).tokens.length).toBe(2);
  });

  it("maxTokens <= 0 or NaN, temperature < 0, too many beams", async () => {
    for (const maxTokens of [0, -1, Number.NaN, 1.5]) {
      await expect(pg.generate({ image: photo, prompt: "caption en", maxTokens })).rejects.toMatchObject({
        code: "ERR_INVALID_ARGUMENT",
      });
    }
    await expect(pg.generate({ image: photo, prompt: "caption en", sampling: { temperature: -1 } })).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
      message: expect.stringMatching(/temperature/),
    });
    await expect(pg.generate({ image: photo, prompt: "caption en", beams: 5 })).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
      message: expect.stringMatching(/at most 4 beams/),
    });
  });

  it("an mmproj whose image size does not match the model, and files that are not PaliGemma", async () => {
    await expect(PaliGemma.load({ model: files224.model, mmproj: files448.mmproj })).rejects.toMatchObject({
      code: "ERR_UNSUPPORTED_MODEL",
    });
    await expect(PaliGemma.load({ model: files224.mmproj, mmproj: files224.mmproj })).rejects.toMatchObject({
      code: "ERR_UNSUPPORTED_MODEL",
    });
    await expect(PaliGemma.load({ model: join(fx.dir, "missing.gguf"), mmproj: files224.mmproj })).rejects.toMatchObject({
      code: "ERR_IO",
    });
    await expect(PaliGemma.load({ model: files224.model, mmproj: files224.model })).rejects.toMatchObject({
      code: "ERR_UNSUPPORTED_MODEL",
    });
  });

  it("a disposed model, and dispose() during generation", async () => {
    const local = await PaliGemma.load({ ...files224, threads: 2 });
    const running = local.generate({ image: photo, prompt: "caption en", maxTokens: 200 });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await local.dispose();
    await expect(running).rejects.toMatchObject({ code: "ERR_DISPOSED" });
    await local.dispose(); // idempotent
    await expect(local.generate({ image: photo, prompt: "caption en" })).rejects.toMatchObject({ code: "ERR_DISPOSED" });
    await expect(local.encodeImage(photo)).rejects.toMatchObject({ code: "ERR_DISPOSED" });
    // the shared native library is unharmed
    const text = await TextModel.load(files224.model);
    expect(text.info().layers).toBe(2);
    text.dispose();
  });
});

/**
 * The official openai client against a real server on the demo model: the same answers as the SDK, the
 * usage counts, streaming in OpenAI's chunk format, finish reasons, and errors as the client sees them.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chatBody, example, exampleBase64, postJson, startServer, type TestServer } from "./helpers.js";

let t: TestServer;
let client: OpenAI;
let dataUrl: string;

beforeAll(async () => {
  t = await startServer({ modelName: "pali-demo" });
  client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: "unused", maxRetries: 0 });
  dataUrl = `data:image/png;base64,${await exampleBase64(2)}`;
});
afterAll(async () => {
  await t?.server.close();
});

function messages(prompt: string, url = dataUrl): OpenAI.Chat.ChatCompletionMessageParam[] {
  return [
    {
      role: "user",
      content: [
        { type: "text", text: prompt },
        { type: "image_url", image_url: { url } },
      ],
    },
  ];
}

describe("OpenAI chat completions", () => {
  it("lists the model", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["pali-demo"]);
  });

  it("answers as pg.generate does, with usage counting the image tokens", async () => {
    for (const prompt of ["caption en", "detect circle ; triangle"]) {
      const expected = await t.pg.generate({ image: example(2), prompt });
      const r = await client.chat.completions.create({ model: "pali-demo", messages: messages(prompt), max_tokens: 64 });
      expect(r.object).toBe("chat.completion");
      expect(r.model).toBe("pali-demo");
      expect(r.choices[0]?.message).toMatchObject({ role: "assistant", content: expected.text });
      expect(r.choices[0]?.finish_reason).toBe("stop");
      const promptTokens = t.pg.info.imageTokens + 1 + t.pg.tokenizer.encode(`${prompt}\n`, { parseSpecial: true }).length;
      expect(promptTokens).toBe(expected.timings.prefillTokens);
      expect(r.usage).toEqual({
        prompt_tokens: promptTokens,
        completion_tokens: expected.tokens.length,
        total_tokens: promptTokens + expected.tokens.length,
      });
    }
    expect(
      (await client.chat.completions.create({ model: "x", messages: messages("caption en") })).choices[0]?.message.content,
    ).toBe("a red triangle and a purple circle");
  });

  it("streams the same text in chunks: role first, finish_reason last, then usage and [DONE]", async () => {
    const expected = await t.pg.generate({ image: example(2), prompt: "caption en" });
    const stream = await client.chat.completions.create({
      model: "pali-demo",
      messages: messages("caption en"),
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0]?.choices[0]?.delta.role).toBe("assistant");
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(expected.text);
    const withChoices = chunks.filter((c) => c.choices.length > 0);
    expect(withChoices.at(-1)?.choices[0]?.finish_reason).toBe("stop");
    expect(withChoices.slice(0, -1).every((c) => c.choices[0]?.finish_reason === null)).toBe(true);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage?.completion_tokens).toBe(expected.tokens.length);
    expect(last?.usage?.prompt_tokens).toBe(expected.timings.prefillTokens);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);

    // The raw wire format ends with [DONE]; without include_usage no usage chunk is sent.
    const raw = await postJson(`${t.url}/v1/chat/completions`, chatBody("caption en", dataUrl, { stream: true }));
    expect(raw.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = raw.text.split("\n\n").filter((e) => e !== "");
    expect(events.at(-1)).toBe("data: [DONE]");
    expect(events.every((e) => e.startsWith("data: "))).toBe(true);
    expect(events.slice(0, -1).some((e) => e.includes('"usage":{'))).toBe(false);
  });

  it("maps finish reasons and honours max_tokens, max_completion_tokens, stop, temperature and seed", async () => {
    const short = await client.chat.completions.create({ model: "m", messages: messages("caption en"), max_tokens: 3 });
    expect(short.choices[0]?.finish_reason).toBe("length");
    expect(short.usage?.completion_tokens).toBe(3);
    const newer = await client.chat.completions.create({
      model: "m",
      messages: messages("caption en"),
      max_completion_tokens: 2,
    });
    expect(newer.usage?.completion_tokens).toBe(2);

    const stopped = await client.chat.completions.create({ model: "m", messages: messages("caption en"), stop: " and" });
    expect(stopped.choices[0]).toMatchObject({ message: { content: "a red triangle" }, finish_reason: "stop" });
    const streamed = await client.chat.completions.create({
      model: "m",
      messages: messages("caption en"),
      stop: [" and"],
      stream: true,
    });
    let text = "";
    let finish: string | null | undefined;
    for await (const c of streamed) {
      text += c.choices[0]?.delta.content ?? "";
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect([text, finish]).toEqual(["a red triangle", "stop"]);
    const streamedShort = await client.chat.completions.create({
      model: "m",
      messages: messages("caption en"),
      max_tokens: 3,
      stream: true,
    });
    for await (const c of streamedShort) finish = c.choices[0]?.finish_reason ?? finish;
    expect(finish).toBe("length");

    const sampled = { model: "m", messages: messages("caption en"), temperature: 5, top_p: 0.9, seed: 7, max_tokens: 12 };
    const a = await client.chat.completions.create(sampled);
    const b = await client.chat.completions.create(sampled);
    expect(a.choices[0]?.message.content).toBe(b.choices[0]?.message.content);
    const sdk = await t.pg.generate({
      image: example(2),
      prompt: "caption en",
      maxTokens: 12,
      sampling: { temperature: 5, topP: 0.9, seed: 7 },
    });
    expect(a.choices[0]?.message.content).toBe(sdk.text);
  });

  it("takes the prompt from the last user message and the image from anywhere in the conversation", async () => {
    const r = await client.chat.completions.create({
      model: "m",
      messages: [
        { role: "system", content: "ignored" },
        ...messages("caption en"),
        { role: "assistant", content: "a red triangle and a purple circle" },
        { role: "user", content: "detect circle" },
      ],
    });
    expect(r.choices[0]?.message.content).toBe((await t.pg.generate({ image: example(2), prompt: "detect circle" })).text);
  });

  it("refuses what PaliGemma cannot answer, with status and code", async () => {
    const refused = async (request: Parameters<typeof client.chat.completions.create>[0]) => {
      try {
        await client.chat.completions.create({ ...request, stream: false });
      } catch (error) {
        if (error instanceof OpenAI.APIError) return [error.status, error.code];
        throw error;
      }
      throw new Error("expected the request to fail");
    };
    const text: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: "user", content: "caption en" }];
    expect(await refused({ model: "m", messages: text })).toEqual([400, "ERR_INVALID_ARGUMENT"]);
    const two = messages("caption en");
    (two[0]?.content as OpenAI.Chat.ChatCompletionContentPart[]).push({ type: "image_url", image_url: { url: dataUrl } });
    expect(await refused({ model: "m", messages: two })).toEqual([400, "ERR_INVALID_ARGUMENT"]);
    expect(await refused({ model: "m", messages: messages("") })).toEqual([400, "ERR_INVALID_ARGUMENT"]);
    expect(await refused({ model: "m", messages: messages("caption en", "http://127.0.0.1:9/cat.png") })).toEqual([
      400,
      "ERR_REMOTE_IMAGES_DISABLED",
    ]);
    expect(await refused({ model: "m", messages: messages("caption en", "data:image/png;base64,AAAA") })).toEqual([
      415,
      "ERR_IMAGE_DECODE",
    ]);
    expect(await refused({ model: "m", messages: messages("caption en"), n: 2 })).toEqual([400, "ERR_INVALID_ARGUMENT"]);
    expect(await refused({ model: "m", messages: messages("caption en"), temperature: -1 })).toEqual([
      400,
      "ERR_INVALID_ARGUMENT",
    ]);
    // An unknown content part type is a schema error, not a crash.
    const audio = [
      { role: "user", content: [{ type: "input_audio", input_audio: { data: "AAAA", format: "wav" } }] },
    ] as OpenAI.Chat.ChatCompletionMessageParam[];
    expect(await refused({ model: "m", messages: audio })).toEqual([400, "ERR_INVALID_ARGUMENT"]);
    // A stream the model refuses before its first token still gets a status.
    const long = `answer en ${"why ".repeat(400)}`;
    const stream = await postJson(`${t.url}/v1/chat/completions`, chatBody(long, dataUrl, { stream: true }));
    expect([stream.status, stream.json?.error?.code]).toEqual([400, "ERR_CONTEXT_OVERFLOW"]);
  });
});

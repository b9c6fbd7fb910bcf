/** Loaded LoRA adapters are models of their own in the OpenAI API: listed, and chosen by `model`. */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, expect, it } from "vitest";
import { root, startServer, type TestServer } from "./helpers.js";

const fixtures = join(root, "models", "fixtures");
const photo = join(fixtures, "references", "images", "coffee.png");
let dir: string;
let t: TestServer;
let client: OpenAI;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pali-server-lora-"));
  const pali = (...args: string[]) =>
    JSON.parse(
      execFileSync(process.execPath, [join(root, "packages", "cli", "dist", "bin.js"), ...args, "--json"], { encoding: "utf8" }),
    );
  const { model } = pali("convert", join(fixtures, "checkpoints", "pg2-224"), "-o", dir, "--type", "q8_0");
  const adapters = ["pg2-224-text", "pg2-224-full"].map((name) => ({
    path: pali("convert", "--lora", join(fixtures, "lora", name), "--base", model, "-o", dir).lora as string,
  }));
  t = await startServer({ modelName: "pg2-224" }, { model, adapters });
  client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: "unused", maxRetries: 0 });
}, 60_000);
afterAll(async () => {
  await t?.server.close();
  await rm(dir, { recursive: true, force: true });
});

it("lists the base model and each adapter", async () => {
  expect((await client.models.list()).data.map((m) => m.id)).toEqual(["pg2-224", "pg2-224-text", "pg2-224-full"]);
});

it("model: an adapter's name applies that adapter alone; the base's name applies every loaded adapter", async () => {
  const { readFile } = await import("node:fs/promises");
  const url = `data:image/png;base64,${(await readFile(photo)).toString("base64")}`;
  const ask = async (model: string) =>
    (
      await client.chat.completions.create({
        model,
        max_tokens: 6,
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "caption en" },
              { type: "image_url", image_url: { url } },
            ],
          },
        ],
      })
    ).choices[0]?.message.content;
  const sdk = async (adapters?: string[]) =>
    (await t.pg.generate({ image: photo, prompt: "caption en", maxTokens: 6, ...(adapters ? { adapters } : {}) })).text;
  const textOnly = await sdk(["pg2-224-text"]);
  const both = await sdk();
  expect(textOnly).not.toBe(both);
  expect(await ask("pg2-224-text")).toBe(textOnly);
  expect(await ask("pg2-224")).toBe(both);
});

/**
 * Bad requests get the right 4xx and code and never hurt the server: missing or broken images, huge
 * bodies, non-images, wrong field types, API keys, remote URLs; the model's loading and load failure as
 * /health reports them; the playground's files and nothing beside them.
 */

import { readFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { PaliError } from "@pali/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "../src/index.js";
import {
  chatBody,
  example,
  exampleBase64,
  type Loose,
  loadDemo,
  post,
  postJson,
  startServer,
  type TestServer,
} from "./helpers.js";

let t: TestServer;
let image: string;

beforeAll(async () => {
  t = await startServer();
  image = await exampleBase64(2);
});
afterAll(async () => {
  await t?.server.close();
});

async function expectError(response: Promise<{ status: number; json: Loose }>, status: number, code: string) {
  const r = await response;
  expect([r.status, r.json?.error?.code], JSON.stringify(r.json)).toEqual([status, code]);
  expect(typeof r.json.error.message).toBe("string");
}

describe("bad requests", () => {
  it("each get their status and code, and the server keeps answering", async () => {
    const caption = (body: unknown) => postJson(`${t.url}/v1/caption`, body);
    await expectError(caption({}), 400, "ERR_INVALID_ARGUMENT");
    await expectError(caption({ image: "this is not base64!" }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(caption({ image: "data:image/png,rawbytes" }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(caption({ image: "file:///etc/passwd" }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(
      caption({ image: Buffer.from("just some text, not an image").toString("base64") }),
      415,
      "ERR_IMAGE_DECODE",
    );
    await expectError(caption({ image: 42 }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(caption({ image, long: "yes" }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(caption({ image, max_tokens: "12" }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(caption({ image, max_tokens: 0 }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(caption({ image, lang: "not a language" }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(caption({ image, lables: "typo" }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(postJson(`${t.url}/v1/detect`, { image }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(postJson(`${t.url}/v1/detect`, { image, labels: [] }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(postJson(`${t.url}/v1/detect`, { image, labels: [1, 2] }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(postJson(`${t.url}/v1/detect?format=xml`, { image, labels: "circle" }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(postJson(`${t.url}/v1/score`, { image, prompt: "caption en" }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(postJson(`${t.url}/v1/chat/completions`, { messages: "caption en" }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(postJson(`${t.url}/v1/chat/completions`, { messages: [] }), 400, "ERR_INVALID_ARGUMENT");
    const chat = chatBody("caption en", `data:image/png;base64,${image}`);
    await expectError(postJson(`${t.url}/v1/chat/completions`, { ...chat, max_tokens: "8" }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(postJson(`${t.url}/v1/chat/completions`, { ...chat, stop: 3 }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(postJson(`${t.url}/v1/chat/completions`, { ...chat, stream: "yes" }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(postJson(`${t.url}/v1/nothing-here`, {}), 404, "ERR_NOT_FOUND");

    // Not JSON at all, and an unknown content type.
    await expectError(post(`${t.url}/v1/caption`, "{", { "content-type": "application/json" }), 400, "ERR_INVALID_ARGUMENT");
    await expectError(
      post(`${t.url}/v1/caption`, "<a/>", { "content-type": "application/xml" }),
      415,
      "ERR_UNSUPPORTED_MEDIA_TYPE",
    );

    expect((await caption({ image })).status).toBe(200);
  });

  it("refuses bodies over the limit (413) as JSON and as uploads, and images over the pixel limit", async () => {
    await expectError(postJson(`${t.url}/v1/caption`, { image: "A".repeat(50 * 1024 * 1024) }), 413, "ERR_PAYLOAD_TOO_LARGE");
    const form = new FormData();
    form.append("image", new Blob([Buffer.alloc(21 * 1024 * 1024)]), "big.png");
    await expectError(post(`${t.url}/v1/caption`, form), 413, "ERR_PAYLOAD_TOO_LARGE");

    // 448×448 is over a 300×300 pixel limit: the SDK's ERR_IMAGE_DECODE, answered as a size problem.
    const small = await startServer({ pixelLimit: 300 * 300, bodyLimit: 64 * 1024 });
    try {
      await expectError(postJson(`${small.url}/v1/caption`, { image }), 413, "ERR_IMAGE_DECODE");
      await expectError(postJson(`${small.url}/v1/caption`, { image: "A".repeat(100_000) }), 413, "ERR_PAYLOAD_TOO_LARGE");
    } finally {
      await small.server.close();
    }
    // The model's own pixel limit (LoadOptions.pixelLimit) holds over HTTP too.
    const strict = await startServer({}, { pixelLimit: 300 * 300 });
    try {
      await expectError(postJson(`${strict.url}/v1/caption`, { image }), 413, "ERR_IMAGE_DECODE");
    } finally {
      await strict.server.close();
    }
    expect((await postJson(`${t.url}/v1/caption`, { image })).status).toBe(200);
  });

  it("asks for the API key on /v1/* only, and refuses a wrong one", async () => {
    const keyed = await startServer({ apiKey: "s3cret" });
    try {
      const body = { image };
      await expectError(postJson(`${keyed.url}/v1/caption`, body), 401, "ERR_UNAUTHORIZED");
      await expectError(postJson(`${keyed.url}/v1/caption`, body, { authorization: "Bearer wrong" }), 401, "ERR_UNAUTHORIZED");
      await expectError(postJson(`${keyed.url}/v1/caption`, body, { authorization: "s3cret" }), 401, "ERR_UNAUTHORIZED");
      const missing = await fetch(`${keyed.url}/v1/models`);
      expect([missing.status, missing.headers.get("www-authenticate")]).toEqual([401, 'Bearer realm="pali"']);
      expect((await postJson(`${keyed.url}/v1/caption`, body, { authorization: "Bearer s3cret" })).status).toBe(200);
      expect((await fetch(`${keyed.url}/v1/models`, { headers: { authorization: "bearer s3cret" } })).status).toBe(200);
      expect((await fetch(`${keyed.url}/health`)).status).toBe(200);
      expect((await fetch(`${keyed.url}/`)).status).toBe(200);
    } finally {
      await keyed.server.close();
    }
  });

  it("fetches http(s) image URLs only when allowed", async () => {
    const png = await readFile(example(2));
    const files: Server = createHttpServer((request, response) => {
      if (request.url === "/shapes.png") response.writeHead(200, { "content-type": "image/png" }).end(png);
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => files.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    const remote = await startServer({ allowRemoteImages: true });
    try {
      const chat = (url: string, server = remote) => postJson(`${server.url}/v1/chat/completions`, chatBody("caption en", url));
      await expectError(chat(`${base}/shapes.png`, t), 400, "ERR_REMOTE_IMAGES_DISABLED");
      await expectError(postJson(`${t.url}/v1/caption`, { image: `${base}/shapes.png` }), 400, "ERR_REMOTE_IMAGES_DISABLED");
      const ok = await chat(`${base}/shapes.png`);
      expect(ok.json.choices[0].message.content).toBe("a red triangle and a purple circle");
      await expectError(chat(`${base}/missing.png`), 400, "ERR_REMOTE_IMAGE");
      await expectError(chat("http://127.0.0.1:9/nothing-listens.png"), 400, "ERR_REMOTE_IMAGE");
    } finally {
      await remote.server.close();
      await new Promise((resolve) => files.close(resolve));
    }
  });
});

describe("the model's state", () => {
  it("answers 503 while the model loads and serves once it has", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const server = await createServer({
      load: async () => {
        await gate;
        return loadDemo();
      },
      port: 0,
      logger: () => {},
    });
    try {
      const url = await server.listen();
      const loading = await fetch(`${url}/health`);
      expect([loading.status, await loading.json()]).toEqual([503, { status: "loading" }]);
      await expectError(postJson(`${url}/v1/caption`, { image }), 503, "ERR_MODEL_LOADING");
      release();
      await server.ready();
      const ready = await fetch(`${url}/health`);
      expect([ready.status, await ready.json()]).toEqual([
        200,
        { status: "ok", model: "pali-demo-q8_0", parallel: expect.any(Number) },
      ]);
    } finally {
      await server.close();
    }
  });

  it("reports a failed load on /health and on every model endpoint", async () => {
    const lines: string[] = [];
    const server = await createServer({
      load: () => loadDemo({ model: "/nonexistent/model.gguf" }),
      port: 0,
      logger: (level, line) => lines.push(`${level} ${line}`),
    });
    try {
      const url = await server.listen();
      await expect(server.ready()).rejects.toBeInstanceOf(PaliError);
      const health = await fetch(`${url}/health`);
      const body = (await health.json()) as { status: string; error: { code: string } };
      expect([health.status, body.status, typeof body.error.code]).toEqual([503, "error", "string"]);
      await expectError(postJson(`${url}/v1/caption`, { image }), 503, body.error.code);
      expect(lines.some((l) => l.startsWith("error could not load the model"))).toBe(true);
    } finally {
      await server.close();
    }
  });
});

describe("the playground's files", () => {
  it("serves public/ with content types and nothing outside it", async () => {
    const index = await fetch(`${t.url}/`);
    expect([index.status, index.headers.get("content-type")]).toEqual([200, "text/html; charset=utf-8"]);
    expect(await index.text()).toMatch(/<html/i);
    for (const [path, type] of [
      ["/playground/app.js", "text/javascript; charset=utf-8"],
      ["/playground/style.css", "text/css; charset=utf-8"],
      ["/playground/index.html", "text/html; charset=utf-8"],
    ]) {
      const r = await fetch(`${t.url}${path}`);
      expect([path, r.status, r.headers.get("content-type")]).toEqual([path, 200, type]);
    }
    for (const path of [
      "/playground/../package.json",
      "/playground/..%2fpackage.json",
      "/playground/%2e%2e/%2e%2e/package.json",
      "/playground/..%5cpackage.json",
      "/playground/.hidden",
      "/playground/missing.js",
      "/playground/%00",
    ]) {
      const r = await fetch(`${t.url}${path}`);
      expect([path, r.status]).toEqual([path, 404]);
    }
  });
});

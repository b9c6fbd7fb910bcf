/**
 * `pali serve` as a child process on the demo model: it prints its URL once listening, answers /health,
 * and on SIGTERM finishes the request in flight before exiting 0; argument, load and port errors.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { ramblingSeed } from "../../server/test/demo.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const bin = join(root, "packages", "cli", "dist", "bin.js");
const model = join(root, "models", "demo", "pali-demo-q8_0.gguf");
const example = join(root, "models", "demo", "examples", "002.png");

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});

interface Served {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exit: Promise<number | null>;
}

async function start(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [bin, "serve", "-m", model, "--port", "0", "--threads", "1", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PALI_API_KEY: "" },
  });
  children.push(child);
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let stdout = "";
    child.stdout?.on("data", (d: Buffer) => {
      stdout += d.toString();
      const m = /listening on (http:\/\/\S+)\n/.exec(stdout);
      if (m) resolve(m[1] as string);
    });
    void exit.then((code) => reject(new Error(`pali serve exited with ${code} before listening: ${stderr}`)));
  });
  return { child, url, stderr: () => stderr, exit };
}

async function healthy(url: string): Promise<{ status: string; model: string }> {
  for (let i = 0; i < 500; i++) {
    const r = await fetch(`${url}/health`);
    if (r.status === 200) return (await r.json()) as { status: string; model: string };
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("the model did not load");
}

describe("pali serve", () => {
  it("prints its URL, answers /health, and drains an in-flight request on SIGTERM before exiting 0", async () => {
    const s = await start([]);
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await healthy(s.url)).toMatchObject({ status: "ok", model: "pali-demo-q8_0" });

    const image = `data:image/png;base64,${(await readFile(example)).toString("base64")}`;
    const response = await fetch(`${s.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "caption en" },
              { type: "image_url", image_url: { url: image } },
            ],
          },
        ],
        stream: true,
        stream_options: { include_usage: true },
        // sampling at a high temperature, with a seed that keeps the demo model from stopping early
        temperature: 5,
        seed: await ramblingSeed(400),
        max_tokens: 400,
      }),
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value);
    s.child.kill("SIGTERM");
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += decoder.decode(r.value);
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    const usage = text
      .split("\n\n")
      .filter((e) => e.startsWith("data: {"))
      .map((e) => JSON.parse(e.slice(6)) as { usage?: { completion_tokens: number } | null })
      .find((c) => c.usage)?.usage;
    expect(usage?.completion_tokens).toBe(400);
    expect(await s.exit).toBe(0);
    expect(s.stderr()).toMatch(/SIGTERM: finishing the requests in flight/);
    expect(s.stderr()).toMatch(/info POST \/v1\/chat\/completions 200 [\d.]+ ms 400 tokens/);
  });

  it("warns once when it listens beyond loopback without an API key, and not with one", async () => {
    const open = await start(["--host", "0.0.0.0"]);
    await healthy(open.url.replace("0.0.0.0", "127.0.0.1"));
    open.child.kill("SIGINT");
    expect(await open.exit).toBe(0);
    expect(open.stderr().match(/without an API key/g)).toHaveLength(1);

    const keyed = await start(["--host", "0.0.0.0", "--api-key", "k", "--log-level", "warn"]);
    const local = keyed.url.replace("0.0.0.0", "127.0.0.1");
    await healthy(local);
    expect((await fetch(`${local}/v1/models`)).status).toBe(401);
    expect((await fetch(`${local}/v1/models`, { headers: { authorization: "Bearer k" } })).status).toBe(200);
    keyed.child.kill("SIGTERM");
    expect(await keyed.exit).toBe(0);
    expect(keyed.stderr()).not.toMatch(/without an API key|info /);
  });

  it("fails with a code on bad arguments, a model that does not load, and a port in use", async () => {
    const run = (args: string[]) => spawnSync(process.execPath, [bin, "serve", ...args], { encoding: "utf8", timeout: 60_000 });
    expect(run([]).status).toBe(2);
    const port = run(["-m", model, "--port", "http"]);
    expect([port.status, port.stderr]).toEqual([2, expect.stringMatching(/--port.*ERR_INVALID_ARGUMENT/)]);
    expect(run(["-m", model, "--log-level", "loud"]).status).toBe(2);
    expect(run(["-m", model, "--parallel", "0"]).status).toBe(2);
    const missing = run(["-m", "/nonexistent/model.gguf", "--port", "0"]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/could not load the model/);

    const s = await start([]);
    const taken = run(["-m", model, "--port", new URL(s.url).port]);
    expect([taken.status, taken.stderr]).toEqual([1, expect.stringMatching(/Could not listen on 127\.0\.0\.1:\d+.*ERR_IO/)]);
    s.child.kill("SIGTERM");
    expect(await s.exit).toBe(0);
  });
});

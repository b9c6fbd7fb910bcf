/**
 * Under load and when things go wrong: 100 concurrent requests against a small queue (each gets 200 or
 * 429 with Retry-After, none lost), memory that settles, clients that hang up, deadlines, and a close that
 * drains the requests in flight.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chatBody, exampleBase64, postJson, ramblingSeed, startServer, type TestServer } from "./helpers.js";

let t: TestServer;
let dataUrl: string;
let image: string;

beforeAll(async () => {
  rambling.seed = await ramblingSeed(rambling.max_tokens);
  t = await startServer({ maxQueue: 4 });
  image = await exampleBase64(2);
  dataUrl = `data:image/png;base64,${image}`;
});
afterAll(async () => {
  await t?.server.close();
});

/** A generation that runs long on the demo model: sampling at a high temperature, with a seed that picks no <eos>. */
const rambling = { temperature: 5, seed: 1, max_tokens: 1000 };

async function wave(n: number) {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const r =
        i % 2 === 0
          ? await postJson(`${t.url}/v1/caption`, { image })
          : await postJson(`${t.url}/v1/chat/completions`, chatBody("caption en", dataUrl));
      return { status: r.status, retryAfter: r.headers.get("retry-after"), json: r.json };
    }),
  );
}

async function until(condition: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("load", () => {
  it("answers 100 concurrent requests with 200 or 429 (Retry-After), and memory settles", async () => {
    const first = await wave(100);
    const ok = first.filter((r) => r.status === 200);
    const busy = first.filter((r) => r.status === 429);
    expect(ok.length + busy.length).toBe(100);
    expect(ok.length).toBeGreaterThanOrEqual(t.pg.info.parallel + 4);
    expect(busy.length).toBeGreaterThan(0);
    for (const r of busy) {
      expect(r.json.error.code).toBe("ERR_QUEUE_FULL");
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    for (const r of ok) expect(r.json.text ?? r.json.choices[0].message.content).toBe("a red triangle and a purple circle");
    expect((await fetch(`${t.url}/health`)).status).toBe(200);

    const before = process.memoryUsage().rss;
    for (let i = 0; i < 3; i++) {
      const again = await wave(100);
      expect(again.every((r) => r.status === 200 || r.status === 429)).toBe(true);
    }
    const after = process.memoryUsage().rss;
    // Generous: three more waves must not grow the process by more than a quarter plus 64 MB.
    expect(after).toBeLessThan(before * 1.25 + 64 * 1024 * 1024);
    const health = await fetch(`${t.url}/health`);
    expect([health.status, ((await health.json()) as { status: string }).status]).toEqual([200, "ok"]);
    expect(t.lines.filter((l) => / 429 /.test(l)).length).toBeGreaterThan(0);
  });

  it("aborts the generation of a client that hangs up, streaming or not, and keeps serving", async () => {
    const controller = new AbortController();
    const response = await fetch(`${t.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(chatBody("caption en", dataUrl, { ...rambling, stream: true })),
      signal: controller.signal,
    });
    const reader = response.body?.getReader();
    await reader?.read();
    controller.abort();
    await until(() => t.lines.some((l) => l.includes("/v1/chat/completions 499")));
    const line = t.lines.find((l) => l.includes("/v1/chat/completions 499")) as string;
    expect(Number(/ (\d+) tokens/.exec(line)?.[1])).toBeLessThan(1000);

    const plain = new AbortController();
    const pending = fetch(`${t.url}/v1/caption`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ image, max_tokens: 1000 }),
      signal: plain.signal,
    }).catch((e: Error) => e);
    const chat = fetch(`${t.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(chatBody("caption en", dataUrl, rambling)),
      signal: plain.signal,
    }).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 50));
    plain.abort();
    expect(await chat).toBeInstanceOf(Error);
    await pending;
    await until(() => t.lines.filter((l) => l.includes(" 499 ")).length >= 2);

    const next = await postJson(`${t.url}/v1/chat/completions`, chatBody("caption en", dataUrl));
    expect(next.json.choices[0].message.content).toBe("a red triangle and a purple circle");
  });

  it("stops a request at its deadline with 504, streaming or not", async () => {
    const slow = await startServer({ requestTimeoutMs: 150 });
    try {
      const r = await postJson(`${slow.url}/v1/chat/completions`, chatBody("caption en", dataUrl, rambling));
      expect([r.status, r.json.error.code]).toEqual([504, "ERR_TIMEOUT"]);
      const s = await postJson(`${slow.url}/v1/chat/completions`, chatBody("caption en", dataUrl, { ...rambling, stream: true }));
      expect(s.status).toBe(200);
      const events = s.text.split("\n\n").filter((e) => e !== "");
      expect(JSON.parse((events.at(-1) as string).slice(6))).toMatchObject({ error: { code: "ERR_TIMEOUT" } });
      expect((await postJson(`${slow.url}/v1/caption`, { image })).status).toBe(200);
      expect(slow.lines.filter((l) => l.startsWith("warn POST /v1/chat/completions 504")).length).toBe(1);
    } finally {
      await slow.server.close();
    }
  });

  it("close() drains: the request in flight finishes, new ones are refused, the model is freed", async () => {
    const draining = await startServer();
    const inFlight = postJson(
      `${draining.url}/v1/chat/completions`,
      chatBody("caption en", dataUrl, { ...rambling, max_tokens: 300 }),
    );
    await new Promise((r) => setTimeout(r, 50));
    const closed = draining.server.close();
    const during = await fetch(`${draining.url}/health`).then(
      async (h) => [h.status, ((await h.json()) as { error: { code: string } }).error.code],
      () => "refused",
    );
    expect([[503, "ERR_SHUTTING_DOWN"], "refused"]).toContainEqual(during);
    const r = await inFlight;
    expect([r.status, r.json.usage.completion_tokens]).toEqual([200, 300]);
    await closed;
    expect(draining.pg.disposed).toBe(true);
    await expect(fetch(`${draining.url}/health`)).rejects.toThrow();
  });
});

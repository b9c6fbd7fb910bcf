/** The demo model behind a real server on a loopback port, with the log kept in memory. */
import type { LoadOptions, PaliGemma } from "@pali/sdk";
import { createServer, type PaliServer, type ServerOptions } from "../src/index.js";
import { loadDemo } from "./demo.js";

export { demo, example, exampleBase64, loadDemo, model, ramblingSeed, root } from "./demo.js";

export interface TestServer {
  server: PaliServer;
  url: string;
  lines: string[];
  pg: PaliGemma;
}

/** A listening server on 127.0.0.1 and a free port, its model loaded. */
export async function startServer(options: Partial<ServerOptions> = {}, load: Partial<LoadOptions> = {}): Promise<TestServer> {
  const lines: string[] = [];
  const server = await createServer({
    load: () => loadDemo(load),
    port: 0,
    logger: (level, line) => lines.push(`${level} ${line}`),
    ...options,
  });
  const url = await server.listen();
  const pg = await server.ready();
  return { server, url, lines, pg };
}

export function chatBody(prompt: string, imageUrl: string, extra: Record<string, unknown> = {}) {
  return {
    model: "pali",
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: prompt },
          { type: "image_url", image_url: { url: imageUrl } },
        ],
      },
    ],
    ...extra,
  };
}

/** A parsed JSON body, walked freely in assertions (`r.json.error.code`); the assertions check the shapes. */
// biome-ignore lint/suspicious/noExplicitAny: response bodies in tests
export type Loose = any;

/** A POST of any body: the status, headers, text and parsed JSON (undefined when the answer is not JSON). */
export async function post(url: string, body: BodyInit, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: "POST", headers, body });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json: json as Loose };
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  return post(url, JSON.stringify(body), { "content-type": "application/json", ...headers });
}

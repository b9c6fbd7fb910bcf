/** The playground: the files of public/ at / (index.html) and /playground/*, nothing outside that folder. */
import { readFile, stat } from "node:fs/promises";
import { extname, resolve, sep } from "node:path";
import type { FastifyInstance, FastifyReply } from "fastify";
import { ServerError, ServerErrorCode } from "./errors.js";

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
};

function notFound(path: string): ServerError {
  return new ServerError(404, ServerErrorCode.NotFound, `No such file: ${path}`);
}

export function registerStatic(app: FastifyInstance, publicDir: string): void {
  const root = resolve(publicDir);

  async function file(relative: string) {
    // Fastify has already percent-decoded the path; refuse what could leave the folder or reveal dotfiles.
    const parts = relative.split(/[\\/]/).filter((p) => p !== "");
    if (parts.some((p) => p.startsWith(".") || p.includes("\0"))) throw notFound(relative);
    const path = resolve(root, ...parts);
    if (!path.startsWith(root + sep)) throw notFound(relative);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) throw notFound(relative);
    return { body: await readFile(path), type: contentTypes[extname(path).toLowerCase()] ?? "application/octet-stream" };
  }

  async function serve(reply: FastifyReply, relative: string) {
    const { body, type } = await file(relative);
    return reply.type(type).header("cache-control", "no-cache").send(body);
  }

  app.get("/", (_request, reply) => serve(reply, "index.html"));
  app.get("/playground", (_request, reply) => serve(reply, "index.html"));
  app.get<{ Params: { "*": string } }>("/playground/*", (request, reply) => serve(reply, request.params["*"] || "index.html"));
}

/**
 * createServer: one Fastify instance around one model. It listens before the model has loaded (health
 * says so), admits a bounded number of requests, and drains on close: no new requests, the ones in
 * flight finish, then the model is freed.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { PaliGemma } from "@pali/sdk";
import Fastify, { type FastifyInstance } from "fastify";
import type { ServerContext } from "./context.js";
import { ServerError, ServerErrorCode, toErrorResponse } from "./errors.js";
import { Admission, Counter, explainAbort, stateOf, trackRequest } from "./limits.js";
import { createLog } from "./log.js";
import { ModelSlot } from "./model.js";
import { registerMultipart } from "./multipart.js";
import { registerOpenAI } from "./openai.js";
import { resolveOptions, type ServerOptions } from "./options.js";
import { registerStatic } from "./static.js";
import { registerTasks } from "./tasks.js";

export interface PaliServer {
  /** the Fastify instance (`app.inject()` in tests) */
  readonly app: FastifyInstance;
  /** `http://host:port` once listening */
  readonly url: string | undefined;
  readonly address: AddressInfo | undefined;
  /** Starts listening (the model may still be loading) and resolves with the URL. */
  listen(): Promise<string>;
  /** The model once loaded; rejects with the load error. */
  ready(): Promise<PaliGemma>;
  /** Drains: refuses new requests, waits for those in flight, frees the model. Idempotent. */
  close(): Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host) || host === "::ffff:127.0.0.1";
}

/** Compares digests, so that neither the key's content nor its length leaks through timing. */
function sameKey(given: string, key: string): boolean {
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(given), digest(key));
}

export async function createServer(options: ServerOptions): Promise<PaliServer> {
  const o = resolveOptions(options);
  const log = createLog(o.logLevel, o.logger);
  const ctx: ServerContext = {
    options: o,
    model: new ModelSlot(o.load, o.modelName, log),
    admission: new Admission(o.maxQueue, o.requestTimeoutMs),
    images: { allowRemote: o.allowRemoteImages, maxBytes: o.bodyLimit, pixelLimit: o.pixelLimit },
    log,
  };
  // Unhandled otherwise when nobody calls ready(); the slot has logged the failure.
  ctx.model.ready().catch(() => {});
  let closing = false;
  const inFlight = new Counter();
  let closed: Promise<void> | undefined;
  let address: AddressInfo | undefined;

  const app = Fastify({
    logger: false,
    bodyLimit: o.bodyLimit,
    // Our own 503 while draining, in the { error } shape.
    return503OnClosing: false,
    // Types are what the schema says: no "12" for 12 in JSON (multipart fields are converted by schema).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });

  app.addHook("onRequest", async (request, reply) => {
    const state = trackRequest(request, reply);
    inFlight.up();
    reply.raw.once("close", () => {
      inFlight.down();
      const ms = performance.now() - state.started;
      const status = reply.raw.writableFinished ? reply.statusCode : 499;
      const tokens = state.completionTokens === undefined ? "" : ` ${state.completionTokens} tokens`;
      const code = state.errorCode === undefined ? "" : ` ${state.errorCode}`;
      // Loading, draining and deadlines are the server working as meant; other 5xx are faults.
      const level = status === 503 || status === 504 ? "warn" : status >= 500 ? "error" : "info";
      log(level, `${request.method} ${request.url} ${status} ${ms.toFixed(1)} ms${tokens}${code}`);
    });
    if (closing)
      throw new ServerError(503, ServerErrorCode.ShuttingDown, "The server is shutting down", {
        headers: { connection: "close" },
      });
    const path = request.url.split("?")[0] as string;
    if (o.apiKey !== undefined && (path === "/v1" || path.startsWith("/v1/"))) {
      const given = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "")?.[1];
      if (given === undefined || !sameKey(given, o.apiKey))
        throw new ServerError(
          401,
          ServerErrorCode.Unauthorized,
          given === undefined ? "This server needs an API key: send Authorization: Bearer KEY" : "The API key is not valid",
          { headers: { "www-authenticate": 'Bearer realm="pali"' } },
        );
    }
  });
  // While draining, connections close after their response instead of idling on keep-alive.
  app.addHook("onSend", async (_request, reply) => {
    if (closing) reply.header("connection", "close");
  });

  app.setErrorHandler((error, request, reply) => {
    const state = stateOf(request);
    const e = toErrorResponse(explainAbort(error, state.controller.signal));
    state.errorCode = e.status >= 500 ? `${e.code}: ${e.message}` : e.code;
    return reply
      .code(e.status)
      .headers(e.headers)
      .send({ error: { code: e.code, message: e.message } });
  });
  app.setNotFoundHandler((request, reply) => {
    stateOf(request).errorCode = ServerErrorCode.NotFound;
    return reply.code(404).send({
      error: { code: ServerErrorCode.NotFound, message: `No route for ${request.method} ${request.url.split("?")[0]}` },
    });
  });

  await registerMultipart(app, o.bodyLimit);

  app.get("/health", async (_request, reply) => {
    const s = ctx.model.state;
    if (s.kind === "ready") return { status: "ok", model: s.name, parallel: s.pg.info.parallel };
    if (s.kind === "loading") return reply.code(503).header("retry-after", "1").send({ status: "loading" });
    return reply.code(503).send({ status: "error", error: { code: s.code, message: s.message } });
  });
  registerOpenAI(app, ctx);
  registerTasks(app, ctx);
  registerStatic(app, o.publicDir);

  const url = () => {
    if (!address) return undefined;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  };

  return {
    app,
    get url() {
      return url();
    },
    get address() {
      return address;
    },
    async listen() {
      await app.listen({ host: o.host, port: o.port });
      address = app.server.address() as AddressInfo;
      if (!isLoopback(o.host) && o.apiKey === undefined)
        log(
          "warn",
          `listening on ${o.host} without an API key: anyone who can reach this port can use the model (set an API key)`,
        );
      log("info", `listening on ${url()}`);
      return url() as string;
    },
    ready: () => ctx.model.ready(),
    close() {
      closed ??= (async () => {
        closing = true;
        const stopped = app.close();
        await Promise.all([inFlight.idle(), ctx.admission.idle()]);
        // Every response has gone out; what is left are keep-alive and never-used sockets, which
        // server.close() would otherwise wait for (clients keep spare connections open for seconds).
        app.server.closeAllConnections();
        await stopped;
        await ctx.model.dispose();
      })();
      return closed;
    },
  };
}

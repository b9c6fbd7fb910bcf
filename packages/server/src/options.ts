/** createServer's options: checked and defaulted once, here. */
import { fileURLToPath } from "node:url";
import {
  expectBoolean,
  expectInteger,
  expectNonEmptyString,
  expectObject,
  expectOneOf,
  InvalidArgumentError,
  invalid,
  optional,
} from "@pali/core";
import { DEFAULT_PIXEL_LIMIT, PaliGemma } from "@pali/sdk";
import { type LogLevel, type LogSink, logLevels, stderrSink } from "./log.js";

/** A loaded model, or a function that loads one (the server listens while it runs; `signal` fires on close). */
export type ModelSource = PaliGemma | ((signal: AbortSignal) => Promise<PaliGemma> | PaliGemma);

export interface ServerOptions {
  load: ModelSource;
  /** the id in /v1/models and in responses; default the model file's name without .gguf */
  modelName?: string;
  /** default 127.0.0.1 (loopback only) */
  host?: string;
  /** default 8080; 0 picks a free port */
  port?: number;
  /** when set, /v1/* needs `Authorization: Bearer <apiKey>` */
  apiKey?: string;
  /** let chat requests name images by http(s) URL, fetched by the server (default false) */
  allowRemoteImages?: boolean;
  /** the largest request body in bytes (default 20 MiB) */
  bodyLimit?: number;
  /** images with more pixels are refused with 413 before decoding (default like sharp's, 268 M) */
  pixelLimit?: number;
  /** requests that may wait for the model beyond those it works on (default 64); more get 429 */
  maxQueue?: number;
  /** a request that takes longer is aborted with 504 (default 120 000) */
  requestTimeoutMs?: number;
  /** default info: one line per request */
  logLevel?: LogLevel;
  /** where log lines go (default stderr) */
  logger?: LogSink;
  /** the playground's files (default the package's public/) */
  publicDir?: string;
}

export interface ResolvedOptions {
  load: ModelSource;
  modelName: string | undefined;
  host: string;
  port: number;
  apiKey: string | undefined;
  allowRemoteImages: boolean;
  bodyLimit: number;
  pixelLimit: number;
  maxQueue: number;
  requestTimeoutMs: number;
  logLevel: LogLevel;
  logger: LogSink;
  publicDir: string;
}

export function resolveOptions(options: ServerOptions): ResolvedOptions {
  const o = expectObject(options, "options") as unknown as ServerOptions;
  if (!(o.load instanceof PaliGemma) && typeof o.load !== "function")
    throw new InvalidArgumentError("Expected a PaliGemma or a function that loads one for load");
  return {
    load: o.load,
    modelName: optional(o.modelName, undefined as string | undefined, (v) => expectNonEmptyString(v, "modelName")),
    host: optional(o.host, "127.0.0.1", (v) => expectNonEmptyString(v, "host")),
    port: optional(o.port, 8080, (v) => expectInteger(v, "port", 0, 65535)),
    apiKey: optional(o.apiKey, undefined as string | undefined, (v) => expectNonEmptyString(v, "apiKey")),
    allowRemoteImages: optional(o.allowRemoteImages, false, (v) => expectBoolean(v, "allowRemoteImages")),
    bodyLimit: optional(o.bodyLimit, 20 * 1024 * 1024, (v) => expectInteger(v, "bodyLimit", 1024)),
    pixelLimit: optional(o.pixelLimit, DEFAULT_PIXEL_LIMIT, (v) => expectInteger(v, "pixelLimit", 1)),
    maxQueue: optional(o.maxQueue, 64, (v) => expectInteger(v, "maxQueue", 0, 1_000_000)),
    requestTimeoutMs: optional(o.requestTimeoutMs, 120_000, (v) => expectInteger(v, "requestTimeoutMs", 1)),
    logLevel: optional(o.logLevel, "info" as LogLevel, (v) => expectOneOf(v, "logLevel", logLevels)),
    logger: optional(o.logger, stderrSink, (v) => {
      if (typeof v !== "function") throw invalid("function", "logger", v);
      return v as LogSink;
    }),
    publicDir: optional(o.publicDir, fileURLToPath(new URL("../public/", import.meta.url)), (v) =>
      expectNonEmptyString(v, "publicDir"),
    ),
  };
}

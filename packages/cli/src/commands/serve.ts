/** `pali serve`: the HTTP server of @pali/server (OpenAI chat completions, task endpoints, playground). */
import { expectInteger, expectNonEmptyString, expectOneOf, InvalidArgumentError, PaliError } from "@pali/core";
import { PaliGemma } from "@pali/sdk";
import { createServer, type LogLevel, logLevels } from "@pali/server";
import { loraAdapters } from "../lora.js";
import type { Io } from "../output.js";

export const serveHelp = `Usage: pali serve -m MODEL [options]

Serves one model over HTTP: OpenAI's /v1/chat/completions (streaming too) and /v1/models, the task
endpoints /v1/caption, /v1/answer, /v1/ocr, /v1/detect, /v1/segment, /v1/score, /health, and a playground
at /. It listens at once and loads the model meanwhile (/health answers 503 until it is ready); the URL
is printed once listening. SIGTERM or Ctrl-C drains: no new requests, the ones in flight finish, then it
exits 0 (a second signal stops at once).

Options:
  -m, --model MODEL          the model GGUF or a model name
      --mmproj FILE          default: beside the model
      --mask-decoder FILE    for /v1/segment; default: mask-decoder-f32.gguf beside the model
      --lora FILE[:SCALE]    a LoRA adapter (pali convert --lora) every request applies; repeatable
      --host HOST            default 127.0.0.1 (this machine only); 0.0.0.0 for every interface
      --port N               default 8080; 0 picks a free port
      --api-key KEY          require Authorization: Bearer KEY on /v1/* (default: $PALI_API_KEY)
      --parallel N|auto      requests decoded together (default auto)
      --max-queue N          requests that may wait beyond those running (default 64); more get 429
      --timeout SECONDS      a request that takes longer is stopped with 504 (default 120)
      --allow-remote-images  let requests name images by http(s) URL, fetched by the server
      --log-level LEVEL      error, warn, info (default: one line per request) or debug
      --threads N            CPU threads for the model
      --json                 print {"url": ...} once listening instead of the text line
`;

export interface ServeCliOptions {
  model: string | undefined;
  mmproj: string | undefined;
  maskDecoder: string | undefined;
  host: string | undefined;
  port: string | undefined;
  apiKey: string | undefined;
  parallel: string | undefined;
  maxQueue: string | undefined;
  timeout: string | undefined;
  allowRemoteImages: boolean;
  logLevel: string | undefined;
  threads: string | undefined;
  lora?: string[] | undefined;
  json: boolean;
}

const integer = (value: string | undefined, name: string, min: number, max: number) =>
  value === undefined ? undefined : expectInteger(Number(value), name, min, max);

export async function serve(o: ServeCliOptions, io: Io): Promise<number> {
  if (!o.model) throw new InvalidArgumentError("Pass the model with -m MODEL.gguf (or a model name)");
  const model = o.model;
  const port = integer(o.port, "--port", 0, 65535) ?? 8080;
  const parallel = o.parallel === undefined || o.parallel === "auto" ? "auto" : integer(o.parallel, "--parallel", 1, 64);
  const threads = integer(o.threads, "--threads", 1, 1024);
  const maxQueue = integer(o.maxQueue, "--max-queue", 0, 1_000_000);
  const timeout = integer(o.timeout, "--timeout", 1, 86_400);
  const logLevel: LogLevel = expectOneOf(o.logLevel ?? "info", "--log-level", logLevels);
  const host = expectNonEmptyString(o.host ?? "127.0.0.1", "--host");
  const apiKey = o.apiKey ?? (process.env.PALI_API_KEY || undefined);

  const server = await createServer({
    load: (signal) =>
      PaliGemma.load({
        model,
        ...(o.mmproj ? { mmproj: o.mmproj } : {}),
        ...(o.maskDecoder ? { maskDecoder: o.maskDecoder } : {}),
        ...(threads === undefined ? {} : { threads }),
        parallel: parallel as number | "auto",
        ...loraAdapters(o.lora),
        signal,
      }),
    host,
    port,
    ...(apiKey ? { apiKey } : {}),
    ...(maxQueue === undefined ? {} : { maxQueue }),
    ...(timeout === undefined ? {} : { requestTimeoutMs: timeout * 1000 }),
    allowRemoteImages: o.allowRemoteImages,
    logLevel,
    logger: (level, line) => io.stderr(`${new Date().toISOString()} ${level} ${line}\n`),
  });

  let signals = 0;
  let stop: (signal: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => {
    stop = resolve;
  });
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      io.stderr(`${signal}: finishing the requests in flight, then stopping\n`);
      stop(signal);
    } else {
      io.stderr(`${signal}: stopping now\n`);
      process.exit(130);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    let url: string;
    try {
      url = await server.listen();
    } catch (cause) {
      throw new PaliError("ERR_IO", `Could not listen on ${host}:${port}: ${(cause as Error).message}`, { cause });
    }
    io.stdout(o.json ? `${JSON.stringify({ url })}\n` : `pali serve: listening on ${url}\n`);
    // A model that cannot load ends the command (its error is the exit status); a signal drains.
    const loadFailed = server.ready().then(() => new Promise<never>(() => {}));
    await Promise.race([stopped, loadFailed]);
    return 0;
  } finally {
    await server.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

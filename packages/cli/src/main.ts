/** The `pali` command: argument parsing and dispatch. Each command lives in commands/. */
import { parseArgs } from "node:util";
import { InvalidArgumentError } from "@pali/core";
import { convert, convertHelp } from "./commands/convert.js";
import { info, infoHelp } from "./commands/info.js";
import { label, labelHelp, worker, workerHelp } from "./commands/label.js";
import { ls, lsHelp } from "./commands/ls.js";
import { pull, pullHelp } from "./commands/pull.js";
import { rm, rmHelp } from "./commands/rm.js";
import { run, runHelp, score, scoreHelp } from "./commands/run.js";
import { serve, serveHelp } from "./commands/serve.js";
import { task, taskHelp } from "./commands/tasks.js";
import { tokenize, tokenizeHelp } from "./commands/tokenize.js";
import { takeGpuOption } from "./gpu.js";
import { type Io, processIo, reportError } from "./output.js";

const usage = `Usage: pali <command> [options]

Commands:
  info      versions, backends, devices, CPU features; a GGUF file's metadata with -m
  convert   a Hugging Face PaliGemma checkpoint to GGUF (model + mmproj), quantized
  tokenize  the token ids and pieces of a text, with a model's tokenizer
  run       answer a prompt about an image (caption, VQA, OCR, detection), streaming
  pull      a PaliGemma model from the Hugging Face Hub into pali's cache, converted and quantized
  ls        the models in pali's cache (--available: the ones pali can pull)
  rm        remove a model from pali's cache
  score     log-probabilities of a given answer
  caption, ask, ocr, detect, segment
            PaliGemma's tasks with typed output; detect/segment --out draws them on the image
  label     one task over many images (files, folders, globs) → resumable JSON lines or COCO
  worker    serve pali label --redis jobs from a BullMQ queue, on any number of machines
  serve     an HTTP server: OpenAI chat completions, task endpoints, a playground in the browser

Run \`pali <command> --help\` for a command's options. Add --json for machine-readable output.

Environment: PALI_LOG=error|warn|info|debug sets how much of ggml's and libllama's log reaches stderr
(default error); PALI_CACHE is the model cache (default ~/.cache/pali); HF_TOKEN, HF_ENDPOINT for pali pull;
PALI_API_KEY for pali serve. --gpu auto|cuda|vulkan|metal|false (any command; or PALI_GPU) picks the native
variant: a GPU one is test-loaded first, and the CPU is used, with one line on stderr, when it cannot load.
`;

const commands = [
  "info",
  "convert",
  "tokenize",
  "run",
  "score",
  "pull",
  "ls",
  "rm",
  "caption",
  "ask",
  "ocr",
  "detect",
  "segment",
  "label",
  "worker",
  "serve",
];

/** Edit distance, for "did you mean" on a mistyped command. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] as number;
      row[j] = Math.min(above + 1, (row[j - 1] as number) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] as number;
}

function suggestion(command: string): string {
  const best = commands.map((c) => [c, distance(command.toLowerCase(), c)] as const).sort((x, y) => x[1] - y[1])[0];
  return best && best[1] <= Math.max(1, Math.ceil(best[0].length / 3)) ? ` Did you mean \`pali ${best[0]}\`?` : "";
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [command, ...args] = argv;
  // Options end at "--"; what follows is data (pali tokenize's text).
  const dashes = args.indexOf("--");
  const json = (dashes >= 0 ? args.slice(0, dashes) : args).includes("--json");
  try {
    // --gpu is global: it chooses the native variant the first load in this process takes.
    const { rest, gpu } = takeGpuOption(args);
    if (gpu !== undefined) process.env.PALI_GPU = String(gpu);
    if (command === undefined || command === "--help" || command === "-h" || command === "help") {
      io.stdout(usage);
      return 0;
    }
    if (command === "--version" || command === "-v") {
      const { systemInfo } = await import("@pali/core");
      io.stdout(`${systemInfo().pali}\n`);
      return 0;
    }
    switch (command) {
      case "info": {
        const { values } = parse(rest, {
          model: { type: "string", short: "m" },
          json: { type: "boolean" },
          help: { type: "boolean", short: "h" },
        });
        if (values.help) {
          io.stdout(infoHelp);
          return 0;
        }
        return await info({ model: values.model as string | undefined, json }, io);
      }
      case "convert": {
        const { values, positionals } = parse(
          rest,
          {
            out: { type: "string", short: "o" },
            type: { type: "string", short: "t" },
            "mmproj-type": { type: "string" },
            name: { type: "string" },
            threads: { type: "string" },
            "seg-vae": { type: "string" },
            lora: { type: "string" },
            base: { type: "string" },
            "base-mmproj": { type: "string" },
            merge: { type: "boolean" },
            force: { type: "boolean" },
            json: { type: "boolean" },
            help: { type: "boolean", short: "h" },
          },
          1,
        );
        if (values.help) {
          io.stdout(convertHelp);
          return 0;
        }
        return await convert(
          {
            input: positionals[0],
            out: values.out as string | undefined,
            type: values.type as string | undefined,
            mmprojType: values["mmproj-type"] as string | undefined,
            name: values.name as string | undefined,
            threads: values.threads as string | undefined,
            segVae: values["seg-vae"] as string | undefined,
            lora: values.lora as string | undefined,
            base: values.base as string | undefined,
            baseMmproj: values["base-mmproj"] as string | undefined,
            merge: values.merge === true,
            force: values.force === true,
            json,
          },
          io,
        );
      }
      case "run":
      case "score": {
        const { values } = parse(rest, {
          model: { type: "string", short: "m" },
          mmproj: { type: "string" },
          image: { type: "string", short: "i", multiple: true },
          prompt: { type: "string", short: "p" },
          suffix: { type: "string" },
          "max-tokens": { type: "string" },
          temperature: { type: "string" },
          "top-k": { type: "string" },
          "top-p": { type: "string" },
          seed: { type: "string" },
          beams: { type: "string" },
          threads: { type: "string" },
          lora: { type: "string", multiple: true },
          json: { type: "boolean" },
          help: { type: "boolean", short: "h" },
        });
        if (values.help) {
          io.stdout(command === "run" ? runHelp : scoreHelp);
          return 0;
        }
        const s = (k: string) => values[k] as string | undefined;
        const options = {
          model: s("model"),
          mmproj: s("mmproj"),
          // several -i: one prompt over all of them, in order (NLVR2 pairs, video frames)
          images: (values.image as string[] | undefined) ?? [],
          prompt: s("prompt"),
          suffix: s("suffix"),
          maxTokens: s("max-tokens"),
          temperature: s("temperature"),
          topK: s("top-k"),
          topP: s("top-p"),
          seed: s("seed"),
          beams: s("beams"),
          threads: s("threads"),
          lora: values.lora as string[] | undefined,
          json,
        };
        return command === "run" ? await run(options, io) : await score(options, io);
      }
      case "caption":
      case "ask":
      case "ocr":
      case "detect":
      case "segment": {
        const { values } = parse(rest, {
          model: { type: "string", short: "m" },
          mmproj: { type: "string" },
          "mask-decoder": { type: "string" },
          image: { type: "string", short: "i", multiple: true },
          question: { type: "string", short: "q" },
          labels: { type: "string", short: "l" },
          lang: { type: "string" },
          long: { type: "boolean" },
          out: { type: "string", short: "o" },
          "max-tokens": { type: "string" },
          threads: { type: "string" },
          lora: { type: "string", multiple: true },
          json: { type: "boolean" },
          help: { type: "boolean", short: "h" },
        });
        if (values.help) {
          io.stdout(taskHelp);
          return 0;
        }
        const s = (k: string) => values[k] as string | undefined;
        return await task(
          {
            task: command,
            model: s("model"),
            mmproj: s("mmproj"),
            maskDecoder: s("mask-decoder"),
            image: oneImage(values.image, command),
            question: s("question"),
            labels: s("labels"),
            lang: s("lang"),
            long: values.long === true,
            out: s("out"),
            maxTokens: s("max-tokens"),
            threads: s("threads"),
            lora: values.lora as string[] | undefined,
            json,
          },
          io,
        );
      }
      case "label": {
        const { values, positionals } = parse(
          rest,
          {
            task: { type: "string" },
            prompt: { type: "string", short: "p" },
            labels: { type: "string", short: "l" },
            lang: { type: "string" },
            long: { type: "boolean" },
            model: { type: "string", short: "m" },
            mmproj: { type: "string" },
            "mask-decoder": { type: "string" },
            out: { type: "string", short: "o" },
            format: { type: "string" },
            "retry-errors": { type: "boolean" },
            "max-tokens": { type: "string" },
            threads: { type: "string" },
            parallel: { type: "string" },
            redis: { type: "string" },
            queue: { type: "string" },
            "send-images": { type: "boolean" },
            attempts: { type: "string" },
            json: { type: "boolean" },
            help: { type: "boolean", short: "h" },
          },
          Number.POSITIVE_INFINITY,
        );
        if (values.help) {
          io.stdout(labelHelp);
          return 0;
        }
        const s = (k: string) => values[k] as string | undefined;
        return await label(
          {
            inputs: positionals,
            task: s("task"),
            prompt: s("prompt"),
            labels: s("labels"),
            lang: s("lang"),
            long: values.long === true,
            model: s("model"),
            mmproj: s("mmproj"),
            maskDecoder: s("mask-decoder"),
            out: s("out"),
            format: s("format"),
            retryErrors: values["retry-errors"] === true,
            maxTokens: s("max-tokens"),
            threads: s("threads"),
            parallel: s("parallel"),
            redis: s("redis"),
            queue: s("queue"),
            sendImages: values["send-images"] === true,
            attempts: s("attempts"),
            json,
          },
          io,
        );
      }
      case "worker": {
        const { values } = parse(rest, {
          redis: { type: "string" },
          queue: { type: "string" },
          model: { type: "string", short: "m" },
          mmproj: { type: "string" },
          "mask-decoder": { type: "string" },
          concurrency: { type: "string" },
          "stall-timeout": { type: "string" },
          threads: { type: "string" },
          parallel: { type: "string" },
          json: { type: "boolean" },
          help: { type: "boolean", short: "h" },
        });
        if (values.help) {
          io.stdout(workerHelp);
          return 0;
        }
        const s = (k: string) => values[k] as string | undefined;
        return await worker(
          {
            redis: s("redis"),
            queue: s("queue"),
            model: s("model"),
            mmproj: s("mmproj"),
            maskDecoder: s("mask-decoder"),
            concurrency: s("concurrency"),
            stallTimeout: s("stall-timeout"),
            threads: s("threads"),
            parallel: s("parallel"),
            json,
          },
          io,
        );
      }
      case "serve": {
        const { values } = parse(rest, {
          model: { type: "string", short: "m" },
          mmproj: { type: "string" },
          "mask-decoder": { type: "string" },
          host: { type: "string" },
          port: { type: "string" },
          "api-key": { type: "string" },
          parallel: { type: "string" },
          "max-queue": { type: "string" },
          timeout: { type: "string" },
          "allow-remote-images": { type: "boolean" },
          "log-level": { type: "string" },
          threads: { type: "string" },
          lora: { type: "string", multiple: true },
          json: { type: "boolean" },
          help: { type: "boolean", short: "h" },
        });
        if (values.help) {
          io.stdout(serveHelp);
          return 0;
        }
        const s = (k: string) => values[k] as string | undefined;
        return await serve(
          {
            model: s("model"),
            mmproj: s("mmproj"),
            maskDecoder: s("mask-decoder"),
            host: s("host"),
            port: s("port"),
            apiKey: s("api-key"),
            parallel: s("parallel"),
            maxQueue: s("max-queue"),
            timeout: s("timeout"),
            allowRemoteImages: values["allow-remote-images"] === true,
            logLevel: s("log-level"),
            threads: s("threads"),
            lora: values.lora as string[] | undefined,
            json,
          },
          io,
        );
      }
      case "pull": {
        const { values, positionals } = parse(
          rest,
          {
            type: { type: "string", short: "t" },
            "mmproj-type": { type: "string" },
            revision: { type: "string" },
            threads: { type: "string" },
            "keep-source": { type: "boolean" },
            json: { type: "boolean" },
            help: { type: "boolean", short: "h" },
          },
          1,
        );
        if (values.help) {
          io.stdout(pullHelp);
          return 0;
        }
        return await pull(
          {
            name: positionals[0],
            type: values.type as string | undefined,
            mmprojType: values["mmproj-type"] as string | undefined,
            revision: values.revision as string | undefined,
            threads: values.threads as string | undefined,
            keepSource: values["keep-source"] === true,
            json,
          },
          io,
        );
      }
      case "ls": {
        const { values } = parse(rest, {
          available: { type: "boolean" },
          json: { type: "boolean" },
          help: { type: "boolean", short: "h" },
        });
        if (values.help) {
          io.stdout(lsHelp);
          return 0;
        }
        return await ls({ available: values.available === true, json }, io);
      }
      case "rm": {
        const { values, positionals } = parse(
          rest,
          { type: { type: "string", short: "t" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
          1,
        );
        if (values.help) {
          io.stdout(rmHelp);
          return 0;
        }
        return await rm({ name: positionals[0], type: values.type as string | undefined, json }, io);
      }
      case "tokenize": {
        const { values, positionals } = parse(
          rest,
          {
            model: { type: "string", short: "m" },
            special: { type: "boolean" },
            json: { type: "boolean" },
            help: { type: "boolean", short: "h" },
          },
          Number.POSITIVE_INFINITY,
        );
        if (values.help) {
          io.stdout(tokenizeHelp);
          return 0;
        }
        // Everything after "--" is the text, spaces included.
        const text = dashes >= 0 ? rest.slice(dashes + 1).join(" ") : positionals.length > 0 ? positionals.join(" ") : undefined;
        return await tokenize({ model: values.model as string | undefined, text, special: values.special === true, json }, io);
      }
      default:
        throw new InvalidArgumentError(
          `Unknown command ${JSON.stringify(command)}.${suggestion(command)} Run \`pali --help\` for the list of commands.`,
        );
    }
  } catch (error) {
    return reportError(error, json, io);
  }
}

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>;

/** -i given twice used to keep only the last image, silently: one image per command, many with pali label. */
function oneImage(value: unknown, command: string): string | undefined {
  const images = (value as string[] | undefined) ?? [];
  if (images.length > 1) {
    throw new InvalidArgumentError(
      `pali ${command} takes one image (-i) but received ${images.length}; for many images use pali label ${images.join(" ")} --task ... --out results.jsonl`,
    );
  }
  return images[0];
}

function parse(args: string[], options: OptionSpec, maxPositionals = 0) {
  try {
    const parsed = parseArgs({ args, options, allowPositionals: maxPositionals > 0, strict: true });
    if (parsed.positionals.length > maxPositionals)
      throw new Error(`Unexpected argument ${JSON.stringify(parsed.positionals[maxPositionals])}`);
    return parsed;
  } catch (cause) {
    throw new InvalidArgumentError(`${(cause as Error).message}. Run with --help for the options.`, { cause });
  }
}

/** `pali label` (many images, one task, resumable JSONL or COCO) and `pali worker` (its queue's workers). */
import { rename, writeFile } from "node:fs/promises";
import { AbortError, expectInteger, InvalidArgumentError, PaliError } from "@pali/core";
import {
  findImages,
  LabelJournal,
  type LabelPlan,
  type LabelRecord,
  type LabelSpec,
  labelTasks,
  PaliGemma,
  planLabels,
  toCocoDataset,
} from "@pali/sdk";
import type { Io } from "../output.js";
import { createProgress, progressMode } from "../progress.js";

export const labelHelp = `Usage: pali label INPUT... --task TASK -m MODEL --out results.jsonl [options]

Labels every image of INPUT (files, folders searched recursively, glob patterns such as "photos/**/*.jpg")
with one task, writing one JSON line per image: {"image", "task", "prompt", "result"} or, for an image that
cannot be labeled, {"image", "task", "prompt", "error": {"code", "message"}}; the run goes on after a bad
image. Running the same command again resumes: images already in --out are skipped.

Options:
      --task TASK          ${labelTasks.join(", ")}
  -p, --prompt QUESTION    answer: the question
  -l, --labels "a ; b"     detect, segment: what to look for
      --lang CODE          caption, answer: the language (default en)
      --long               caption: the longer description
  -m, --model MODEL        the model GGUF or a model name (not needed with --redis)
      --mmproj FILE        default: beside the model
      --mask-decoder FILE  segment; default: mask-decoder-f32.gguf beside the model
  -o, --out FILE           the results (JSON lines; with --format coco, the COCO file)
      --format FORMAT      jsonl (default) or coco: a COCO dataset of the boxes/masks (detect, segment),
                           written at the end; the JSON lines are kept in FILE.jsonl for resuming
      --retry-errors       redo the images whose earlier attempt was an error
      --max-tokens N, --threads N, --parallel N
      --json               print a summary as one JSON document at the end

Across machines (BullMQ on Redis; start workers with pali worker):
      --redis URL          redis://HOST:PORT: enqueue one job per image, collect the results into --out
      --queue NAME         default pali-label
      --send-images        send image bytes in the jobs (max 16 MiB each) instead of paths on a shared filesystem
      --attempts N         tries per job for transient failures, with backoff (default 3)
`;

export const workerHelp = `Usage: pali worker --redis redis://HOST:PORT -m MODEL [options]

Serves the labeling jobs of \`pali label --redis\`: one model loaded, jobs taken from the queue until
SIGTERM or Ctrl-C (the jobs in flight finish first; a second signal stops at once). A worker killed without
warning has its jobs handed to another once their lock expires (--stall-timeout).

Options:
  -m, --model MODEL          the model GGUF or a model name
      --mmproj FILE          default: beside the model
      --mask-decoder FILE    default: mask-decoder-f32.gguf beside the model
      --queue NAME           default pali-label
      --concurrency N        jobs in flight (default 2: the next image decodes while the model runs)
      --stall-timeout MS     give a silent worker's job to another after this long (default 30000)
      --threads N            CPU threads for the model
      --parallel N           images decoded together (continuous batching; default auto); 1 makes each
                             result independent of which images shared its decode steps
      --json                 one JSON line per job on stdout
`;

export interface LabelCliOptions {
  inputs: string[];
  task: string | undefined;
  prompt: string | undefined;
  labels: string | undefined;
  lang: string | undefined;
  long: boolean;
  model: string | undefined;
  mmproj: string | undefined;
  maskDecoder: string | undefined;
  out: string | undefined;
  format: string | undefined;
  retryErrors: boolean;
  maxTokens: string | undefined;
  threads: string | undefined;
  parallel: string | undefined;
  redis: string | undefined;
  queue: string | undefined;
  sendImages: boolean;
  attempts: string | undefined;
  json: boolean;
}

function spec(o: LabelCliOptions): LabelSpec {
  if (!o.task) throw new InvalidArgumentError(`Pass the task with --task (${labelTasks.join(", ")})`);
  const task = o.task as LabelSpec["task"];
  if (o.prompt !== undefined && task !== "answer")
    throw new InvalidArgumentError(`--prompt is the question of --task answer; ${task} makes its own prompt`);
  return {
    task,
    ...(o.prompt !== undefined ? { question: o.prompt } : {}),
    ...(o.labels !== undefined ? { labels: o.labels.split(";") } : {}),
    ...(o.lang ? { lang: o.lang } : {}),
    ...(o.long ? { long: true } : {}),
    ...(o.maxTokens !== undefined ? { maxTokens: expectInteger(Number(o.maxTokens), "--max-tokens", 1, 4096) } : {}),
  };
}

function loadOptions(o: {
  model: string | undefined;
  mmproj: string | undefined;
  maskDecoder: string | undefined;
  threads: string | undefined;
  parallel: string | undefined;
}) {
  if (!o.model) throw new InvalidArgumentError("Pass the model with -m MODEL.gguf (or a model name)");
  return {
    model: o.model,
    ...(o.mmproj ? { mmproj: o.mmproj } : {}),
    ...(o.maskDecoder ? { maskDecoder: o.maskDecoder } : {}),
    ...(o.threads !== undefined ? { threads: expectInteger(Number(o.threads), "--threads", 1, 1024) } : {}),
    ...(o.parallel !== undefined ? { parallel: expectInteger(Number(o.parallel), "--parallel", 1, 64) } : {}),
  };
}

function onSignals(handler: () => void): () => void {
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}

/** Written whole or not at all: a temp file renamed into place. */
async function writeCoco(path: string, records: LabelRecord[], plan: LabelPlan): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temp, `${JSON.stringify(toCocoDataset(records, plan))}\n`);
    await rename(temp, path);
  } catch (error) {
    throw new PaliError("ERR_IO", `Could not write ${path}: ${(error as Error).message}`, { cause: error });
  }
}

export async function label(o: LabelCliOptions, io: Io): Promise<number> {
  const plan = planLabels(spec(o));
  if (!o.out) throw new InvalidArgumentError("Pass the results file with --out results.jsonl");
  const format = o.format ?? "jsonl";
  if (format !== "jsonl" && format !== "coco")
    throw new InvalidArgumentError(`Expected jsonl or coco for --format but received ${format}`);
  if (format === "coco" && plan.task !== "detect" && plan.task !== "segment")
    throw new InvalidArgumentError(`--format coco is for detect and segment, not ${plan.task}`);
  if (!o.redis && (o.queue || o.sendImages || o.attempts))
    throw new InvalidArgumentError("--queue, --send-images and --attempts go with --redis");
  const images = await findImages(o.inputs);
  const journalPath = format === "coco" ? `${o.out}.jsonl` : o.out;
  const controller = new AbortController();
  const stopSignals = onSignals(() => controller.abort(new AbortError("Interrupted")));
  const journal = await LabelJournal.open(journalPath, plan, { retryErrors: o.retryErrors });
  const total = images.length;
  const skipped = images.filter((i) => journal.has(i)).length;
  const counts = { labeled: 0, failed: 0 };
  const progress = createProgress(progressMode(o.json), io.stderr);
  const started = performance.now();
  const tick = (record: LabelRecord) => {
    counts.labeled++;
    if ("error" in record) {
      counts.failed++;
      if (!o.json)
        io.stderr(
          `${progressMode(false) === "tty" ? "\n" : ""}${record.image}: ${record.error.message} [${record.error.code}]\n`,
        );
    }
    const seconds = (performance.now() - started) / 1000;
    const rate = counts.labeled / Math.max(seconds, 1e-3);
    const done = skipped + counts.labeled;
    progress.update(done / total, `${done}/${total} images, ${rate.toFixed(2)} images/s`, (total - done) / Math.max(rate, 1e-9));
  };
  if (journal.repairedBytes > 0 && !o.json)
    io.stderr(`cut a torn last line (${journal.repairedBytes} bytes) off ${journalPath}: that image is labeled again\n`);
  if (skipped > 0 && !o.json) io.stderr(`resuming: ${skipped} of ${total} images are already in ${journalPath}\n`);
  let interrupted = false;
  try {
    if (o.redis) {
      const { labelThroughQueue } = await import("@pali/queue");
      await labelThroughQueue({
        redis: o.redis,
        ...(o.queue ? { queue: o.queue } : {}),
        images,
        plan,
        journal,
        sendImages: o.sendImages,
        ...(o.attempts !== undefined ? { attempts: Number(o.attempts) } : {}),
        signal: controller.signal,
        onRecord: tick,
        onEnqueued: (n) => {
          if (!o.json) io.stderr(`${n} jobs on the queue; waiting for workers (pali worker --redis ${o.redis})\n`);
        },
      });
    } else {
      await using pg = await PaliGemma.load({ ...loadOptions(o), signal: controller.signal });
      const todo = images.filter((i) => !journal.has(i));
      for await (const record of pg.labelImages(todo, plan, { signal: controller.signal })) {
        await journal.append(record);
        tick(record);
      }
    }
  } catch (error) {
    if (!(error instanceof AbortError) || !controller.signal.aborted) throw error;
    interrupted = true;
  } finally {
    progress.done();
    stopSignals();
    if (format === "coco" && !interrupted) await writeCoco(o.out, await journal.records(), plan);
    await journal.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const summary = {
    out: o.out,
    ...(format === "coco" ? { journal: journalPath } : {}),
    total,
    skipped,
    labeled: counts.labeled,
    failed: counts.failed,
    remaining: total - skipped - counts.labeled,
    seconds: Number(seconds.toFixed(3)),
    imagesPerSecond: Number((counts.labeled / Math.max(seconds, 1e-3)).toFixed(3)),
  };
  if (o.json) io.stdout(`${JSON.stringify(summary)}\n`);
  else
    io.stderr(
      `${interrupted ? "stopped after" : "labeled"} ${counts.labeled} images (${counts.failed} failed, ${skipped} already done) in ${seconds.toFixed(1)} s, ${summary.imagesPerSecond} images/s → ${o.out}${interrupted ? "; run the same command again to resume" : ""}\n`,
    );
  return interrupted ? 130 : 0;
}

export interface WorkerCliOptions {
  redis: string | undefined;
  queue: string | undefined;
  model: string | undefined;
  mmproj: string | undefined;
  maskDecoder: string | undefined;
  concurrency: string | undefined;
  stallTimeout: string | undefined;
  threads: string | undefined;
  parallel: string | undefined;
  json: boolean;
}

export async function worker(o: WorkerCliOptions, io: Io): Promise<number> {
  if (!o.redis) throw new InvalidArgumentError("Pass the queue's Redis with --redis redis://HOST:PORT");
  const concurrency = o.concurrency === undefined ? 2 : expectInteger(Number(o.concurrency), "--concurrency", 1, 256);
  const stallTimeoutMs =
    o.stallTimeout === undefined ? 30_000 : expectInteger(Number(o.stallTimeout), "--stall-timeout", 500, 86_400_000);
  const { LabelWorker } = await import("@pali/queue");
  await using pg = await PaliGemma.load(loadOptions(o));
  let signals = 0;
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const w = await LabelWorker.start({
    redis: o.redis,
    ...(o.queue ? { queue: o.queue } : {}),
    model: pg,
    concurrency,
    stallTimeoutMs,
    onJob: ({ image, ms, record }) => {
      if (o.json)
        io.stdout(`${JSON.stringify({ image, ms: Math.round(ms), ...("error" in record ? { error: record.error } : {}) })}\n`);
      else io.stderr(`${image}\t${Math.round(ms)} ms${"error" in record ? `\t${record.error.code}` : ""}\n`);
    },
  });
  if (!o.json) io.stderr(`worker ready (pid ${process.pid}): queue ${o.queue ?? "pali-label"} on ${o.redis}\n`);
  const stopSignals = onSignals(() => {
    signals++;
    if (!o.json) io.stderr(signals === 1 ? "finishing the jobs in flight, then stopping\n" : "stopping now\n");
    void w.close(signals > 1).then(stop, stop);
  });
  await stopped;
  stopSignals();
  return 0;
}

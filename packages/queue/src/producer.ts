/**
 * The producer side of a queued labeling run: one job per image not yet in the results file, then the
 * records collected as jobs finish. A record is appended to the results file before its job is removed
 * from Redis, and the file refuses an image twice, so a producer that stops anywhere and runs again
 * neither loses nor repeats a result: at-least-once delivery, exactly-once output.
 */
import { readFile, stat } from "node:fs/promises";
import { AbortError, expectInteger, PaliError } from "@pali/core";
import { LabelJournal, type LabelPlan, type LabelRecord } from "@pali/sdk";
import { type Job, Queue, QueueEvents } from "bullmq";
import { connectRedis, DEFAULT_QUEUE } from "./connection.js";
import { decodeJobError, errorRecord, type LabelJobData, labelJobId } from "./jobs.js";

export interface QueueLabelOptions {
  /** redis://HOST:PORT */
  redis: string;
  queue?: string;
  /** the images, named as the records will name them (paths, as findImages lists them) */
  images: readonly string[];
  plan: LabelPlan;
  journal: LabelJournal;
  /** send each image's bytes in its job instead of its path (workers without the shared filesystem) */
  sendImages?: boolean;
  /** with sendImages: larger files are recorded as errors instead of sent (default 16 MiB) */
  maxImageBytes?: number;
  /** tries per job, retries with exponential backoff (default 3) */
  attempts?: number;
  backoffMs?: number;
  signal?: AbortSignal;
  /** each record as it is written */
  onRecord?: (record: LabelRecord) => void;
  /** after the jobs are in the queue: how many were added and how many were already there */
  onEnqueued?: (count: number) => void;
}

export interface QueueLabelSummary {
  enqueued: number;
  collected: number;
}

const BATCH = 500;

async function jobData(image: string, plan: LabelPlan, o: QueueLabelOptions): Promise<LabelJobData | LabelRecord> {
  const path = LabelJournal.key(image);
  if (!o.sendImages) return { image, path, plan };
  const limit = o.maxImageBytes ?? 16 * 1024 * 1024;
  try {
    const size = (await stat(path)).size;
    if (size > limit) {
      return errorRecord(
        { image, plan },
        {
          code: "ERR_INVALID_ARGUMENT",
          message: `${image} is ${size} bytes, more than the ${limit} a job may carry; label it from a shared filesystem (without --send-images)`,
        },
      );
    }
    return { image, plan, bytes: (await readFile(path)).toString("base64") };
  } catch (error) {
    return errorRecord({ image, plan }, { code: "ERR_IO", message: `Could not read ${image}: ${(error as Error).message}` });
  }
}

export async function labelThroughQueue(o: QueueLabelOptions): Promise<QueueLabelSummary> {
  const attempts = expectInteger(o.attempts ?? 3, "attempts", 1, 100);
  const backoffMs = expectInteger(o.backoffMs ?? 1000, "backoffMs", 0, 3_600_000);
  const connection = await connectRedis(o.redis);
  const name = o.queue ?? DEFAULT_QUEUE;
  const queue = new Queue<LabelJobData, LabelRecord>(name, { connection });
  const events = new QueueEvents(name, { connection: connection.duplicate() });
  queue.on("error", () => {});
  events.on("error", () => {});
  let wake: (() => void) | undefined;
  const poke = () => wake?.();
  events.on("completed", poke);
  events.on("failed", poke);
  o.signal?.addEventListener("abort", poke);
  const summary: QueueLabelSummary = { enqueued: 0, collected: 0 };
  const write = async (record: LabelRecord) => {
    if (await o.journal.append(record)) {
      summary.collected++;
      o.onRecord?.(record);
    }
  };
  try {
    await events.waitUntilReady();
    const pending = new Set<string>();
    const todo = o.images.filter((image) => !o.journal.has(image));
    for (let start = 0; start < todo.length; start += BATCH) {
      if (o.signal?.aborted) throw new AbortError("Labeling was stopped", { cause: o.signal.reason });
      const jobs = [];
      for (const image of todo.slice(start, start + BATCH)) {
        const data = await jobData(image, o.plan, o);
        if (!("plan" in data)) {
          await write(data);
          continue;
        }
        const jobId = labelJobId(o.plan, LabelJournal.key(image));
        pending.add(jobId);
        jobs.push({
          name: o.plan.task,
          data,
          opts: {
            jobId,
            attempts,
            backoff: { type: "exponential", delay: backoffMs },
            removeOnComplete: false,
            removeOnFail: false,
          },
        });
      }
      if (jobs.length > 0) await queue.addBulk(jobs);
      summary.enqueued += jobs.length;
    }
    o.onEnqueued?.(summary.enqueued);
    while (pending.size > 0) {
      if (o.signal?.aborted)
        throw new AbortError("Labeling was stopped; run it again to collect the rest", { cause: o.signal.reason });
      const woken = new Promise<void>((resolve) => {
        wake = resolve;
      });
      const finished = async (state: "completed" | "failed") =>
        ((await queue.getJobs(state, 0, BATCH - 1, true)) as Job<LabelJobData, LabelRecord>[]).map((job) => ({ job, state }));
      let progressed = false;
      for (const { job, state } of [...(await finished("completed")), ...(await finished("failed"))]) {
        // Jobs of another run on the same queue are theirs to collect.
        if (!job?.id || job.data?.plan?.prompt !== o.plan.prompt) continue;
        await write(state === "failed" ? errorRecord(job.data, decodeJobError(job.failedReason)) : job.returnvalue);
        pending.delete(job.id);
        await job.remove().catch(() => {}); // removed by another collector meanwhile: nothing lost
        progressed = true;
      }
      if (!progressed && pending.size > 0) await Promise.race([woken, new Promise((r) => setTimeout(r, 1000))]);
      wake = undefined;
    }
    return summary;
  } catch (error) {
    if (error instanceof PaliError) throw error;
    throw new PaliError("ERR_IO", `The queue at ${o.redis} failed: ${(error as Error).message}`, { cause: error });
  } finally {
    o.signal?.removeEventListener("abort", poke);
    await events.close().catch(() => {});
    await queue.close().catch(() => {});
    connection.disconnect();
  }
}

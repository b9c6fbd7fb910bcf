/**
 * A labeling worker: takes jobs from the queue, labels each image with the loaded model and hands the
 * record back through BullMQ. A bad image completes its job with an error record (no retry); a transient
 * failure (I/O, memory, a model that cannot run the job) throws, and BullMQ retries it with backoff. A worker
 * that dies mid-job loses its lock; a live worker's stall check puts the job back for another.
 */
import { PaliError } from "@pali/core";
import { isFatalLabelError, type LabelRecord, type PaliGemma, planLabels } from "@pali/sdk";
import { type Job, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { connectRedis, DEFAULT_QUEUE } from "./connection.js";
import { encodeJobError, errorRecord, type LabelJobData } from "./jobs.js";

const transientCodes = new Set(["ERR_IO", "ERR_OUT_OF_MEMORY", "ERR_INTERNAL"]);

export interface LabelWorkerOptions {
  /** redis://HOST:PORT */
  redis: string;
  queue?: string;
  model: PaliGemma;
  /** jobs in flight (default 2): images decode while the model labels another; the model runs one at a time */
  concurrency?: number;
  /** a job whose worker has not renewed its lock for this long is given to another worker (default 30 s) */
  stallTimeoutMs?: number;
  /** each finished job, for logs */
  onJob?: (event: { image: string; ms: number; record: LabelRecord }) => void;
}

export class LabelWorker {
  #worker: Worker<LabelJobData, LabelRecord>;
  #connection: Redis;
  #closing: Promise<void> | undefined;

  private constructor(worker: Worker<LabelJobData, LabelRecord>, connection: Redis) {
    this.#worker = worker;
    this.#connection = connection;
  }

  static async start(options: LabelWorkerOptions): Promise<LabelWorker> {
    const connection = await connectRedis(options.redis);
    const pg = options.model;
    const stall = options.stallTimeoutMs ?? 30_000;
    const process = async (job: Job<LabelJobData, LabelRecord>): Promise<LabelRecord> => {
      const started = performance.now();
      const data = job.data;
      let record: LabelRecord;
      try {
        const plan = planLabels(data.plan);
        const item =
          data.bytes !== undefined
            ? { name: data.image, image: Buffer.from(data.bytes, "base64") }
            : { name: data.image, image: data.path ?? data.image };
        record = await pg.label(item, plan);
      } catch (error) {
        // Thrown: a fatal error of this worker (another may do better) or a malformed job (no retry helps).
        if (error instanceof PaliError && !isFatalLabelError(error))
          record = errorRecord(data, { code: error.code, message: error.message });
        else
          throw new Error(
            encodeJobError(
              error instanceof PaliError
                ? { code: error.code, message: error.message }
                : { code: "ERR_INTERNAL", message: String(error) },
            ),
          );
      }
      const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if ("error" in record && transientCodes.has(record.error.code) && !lastAttempt)
        throw new Error(encodeJobError(record.error));
      options.onJob?.({ image: data.image, ms: performance.now() - started, record });
      return record;
    };
    const worker = new Worker<LabelJobData, LabelRecord>(options.queue ?? DEFAULT_QUEUE, process, {
      connection,
      concurrency: options.concurrency ?? 2,
      lockDuration: stall,
      stalledInterval: Math.max(500, Math.floor(stall / 2)),
      // A job that stalls twice (its worker killed twice) fails with an error record rather than looping.
      maxStalledCount: 2,
      autorun: true,
    });
    worker.on("error", () => {}); // connection trouble: ioredis reconnects; BullMQ resumes
    await worker.waitUntilReady();
    return new LabelWorker(worker, connection);
  }

  /** Stops taking jobs; the jobs in flight finish first unless `force`. Idempotent. */
  close(force = false): Promise<void> {
    this.#closing ??= (async () => {
      await this.#worker.close(force);
      this.#connection.disconnect();
    })();
    return this.#closing;
  }
}

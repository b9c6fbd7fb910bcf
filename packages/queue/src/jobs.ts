/** What travels through the queue: one job per image, its data and how its outcome becomes a record. */
import { createHash } from "node:crypto";
import type { LabelError, LabelPlan, LabelRecord } from "@pali/sdk";

export interface LabelJobData {
  /** the record's name for the image (the path as the producer listed it) */
  image: string;
  /** absolute path on the shared filesystem, when the bytes do not travel in the job */
  path?: string;
  /** the image file, base64, when it travels in the job */
  bytes?: string;
  plan: LabelPlan;
}

/** Same image and prompt → same job id, so enqueueing again (a resumed producer) adds nothing twice. */
export function labelJobId(plan: LabelPlan, resolvedPath: string): string {
  return createHash("sha256").update(`${plan.prompt}\0${resolvedPath}`).digest("hex").slice(0, 40);
}

/** Errors a worker throws carry their code in the message, since BullMQ keeps only a failed job's message. */
export function encodeJobError(error: LabelError): string {
  return `${error.code}: ${error.message}`;
}

export function decodeJobError(reason: string | undefined): LabelError {
  const match = /^(ERR_[A-Z_]+): ([\s\S]*)$/.exec(reason ?? "");
  return match
    ? { code: match[1] as string, message: match[2] as string }
    : { code: "ERR_INTERNAL", message: reason || "the job failed" };
}

export function errorRecord(data: LabelJobData, error: LabelError): LabelRecord {
  return { image: data.image, task: data.plan.task, prompt: data.plan.prompt, error };
}

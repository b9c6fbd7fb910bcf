/**
 * The results file of a labeling run: one JSON line per image, appended as results arrive, and the record
 * of what is done when the run is resumed. Each line goes out in one write; a line torn by a crash or a
 * kill -9 (the only place one can be is the end) is cut off when the file is opened again, so the next run
 * redoes that image and every line of the file stays whole. One process writes a journal at a time.
 */
import { createReadStream } from "node:fs";
import { type FileHandle, open, readFile, rename, rm, stat, truncate, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { InvalidArgumentError, PaliError } from "@pali/core";
import { pidAlive } from "@pali/hub";
import type { LabelPlan, LabelRecord } from "./label.js";

export interface LabelJournalOptions {
  /** redo the images whose earlier attempt gave an error record (their lines are removed first) */
  retryErrors?: boolean;
}

function ioError(message: string, cause: unknown): PaliError {
  return new PaliError("ERR_IO", `${message}: ${(cause as Error).message}`, { cause });
}

/** Locks this process holds: a second journal on the same file in the same process is refused too. */
const held = new Set<string>();

/** `<path>.lock` holds the writer's pid; a lock left by a dead process is taken over. */
async function takeLock(path: string): Promise<string> {
  const lock = `${resolve(path)}.lock`;
  if (held.has(lock)) {
    throw new InvalidArgumentError(
      `Another labeling run (this process) is writing ${path}; wait for it or pass another output file`,
    );
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lock, String(process.pid), { flag: "wx" });
      held.add(lock);
      return lock;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw ioError(`Could not create ${lock}`, error);
      const holder = Number.parseInt(await readFile(lock, "utf8").catch(() => ""), 10);
      if (pidAlive(holder)) {
        throw new InvalidArgumentError(
          `Another labeling run (pid ${holder}) is writing ${path}; wait for it or pass another output file`,
        );
      }
      await rm(lock, { force: true });
    }
  }
  throw new PaliError("ERR_IO", `Could not take the lock ${lock}; remove it if no labeling run is writing ${path}`);
}

interface Scan {
  /** byte length of the whole lines */
  whole: number;
  size: number;
  records: LabelRecord[];
  malformed: number;
}

async function scan(path: string): Promise<Scan | undefined> {
  const size = await stat(path).then(
    (s) => s.size,
    (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw ioError(`Could not read ${path}`, error);
    },
  );
  if (size === undefined) return undefined;
  const records: LabelRecord[] = [];
  let whole = 0;
  let malformed = 0;
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    const bytes = Buffer.byteLength(line) + 1;
    if (whole + bytes > size) break; // the last line, without its newline: torn
    whole += bytes;
    if (line.trim() === "") continue;
    try {
      const value = JSON.parse(line) as LabelRecord;
      if (typeof value?.image !== "string" || typeof value.task !== "string") throw new Error("not a label record");
      records.push(value);
    } catch {
      malformed++;
    }
  }
  return { whole, size, records, malformed };
}

export class LabelJournal {
  readonly path: string;
  /** resolved paths (or names) of the images already done */
  readonly done: Set<string>;
  /** records already in the file when it was opened */
  readonly resumed: number;
  /** bytes of a torn last line cut off at open */
  readonly repairedBytes: number;
  #file: FileHandle;
  #lock: string;
  #closed = false;

  private constructor(path: string, file: FileHandle, lock: string, done: Set<string>, resumed: number, repaired: number) {
    this.path = path;
    this.#file = file;
    this.#lock = lock;
    this.done = done;
    this.resumed = resumed;
    this.repairedBytes = repaired;
  }

  /** The key an image is known by: its resolved path (names that are not paths resolve the same way). */
  static key(image: string): string {
    return resolve(image);
  }

  /** Opens (or creates) the results file of `plan`, repairing a torn end; refuses a file of another task or prompt. */
  static async open(path: string, plan: LabelPlan, options: LabelJournalOptions = {}): Promise<LabelJournal> {
    const lock = await takeLock(path);
    try {
      const found = await scan(path);
      let records = found?.records ?? [];
      const other = records.find((r) => r.task !== plan.task || r.prompt !== plan.prompt);
      if (other) {
        throw new InvalidArgumentError(
          `${path} holds results of another labeling (${JSON.stringify(other.prompt)}, not ${JSON.stringify(plan.prompt)}); pass another output file, or the same task and prompt to resume`,
        );
      }
      let repaired = 0;
      if (found && options.retryErrors && records.some((r) => "error" in r)) {
        records = records.filter((r) => !("error" in r));
        const temp = `${path}.${process.pid}.tmp`;
        await writeFile(temp, records.map((r) => `${JSON.stringify(r)}\n`).join(""));
        await rename(temp, path);
      } else if (found && found.whole < found.size) {
        repaired = found.size - found.whole;
        await truncate(path, found.whole);
      }
      const done = new Set(records.map((r) => LabelJournal.key(r.image)));
      const file = await open(path, "a");
      return new LabelJournal(path, file, lock, done, records.length, repaired);
    } catch (error) {
      held.delete(lock);
      await rm(lock, { force: true });
      if (error instanceof PaliError) throw error;
      throw ioError(`Could not open ${path}`, error);
    }
  }

  has(image: string): boolean {
    return this.done.has(LabelJournal.key(image));
  }

  /** Appends one record (a no-op for an image already written: output holds each image once). */
  async append(record: LabelRecord): Promise<boolean> {
    if (this.#closed) throw new PaliError("ERR_DISPOSED", `The results file ${this.path} is closed`);
    const key = LabelJournal.key(record.image);
    if (this.done.has(key)) return false;
    this.done.add(key);
    try {
      await this.#file.write(`${JSON.stringify(record)}\n`);
    } catch (error) {
      this.done.delete(key);
      throw ioError(`Could not write to ${this.path}`, error);
    }
    return true;
  }

  /** Every record in the file, in file order (for exports such as COCO at the end of a run). */
  async records(): Promise<LabelRecord[]> {
    await this.#file.sync().catch(() => {});
    return (await scan(this.path))?.records ?? [];
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#file.close().catch(() => {});
    held.delete(this.#lock);
    await rm(this.#lock, { force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * One pull of a model at a time: `locks/<name>.lock` holds the pid of the process pulling it. A second
 * process (or a second pull in the same one) waits until the lock is gone, then finds the model cached;
 * a lock whose process has died is taken over.
 */
import { mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { AbortError } from "@pali/core";
import { writeError } from "./errors.js";

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function lockPath(cache: string, name: string): string {
  return join(cache, "locks", `${name}.lock`);
}

/** The pid holding the lock of `name` if a live process does (0: a process that is writing its pid). */
export async function lockHolder(cache: string, name: string): Promise<number | undefined> {
  const path = lockPath(cache, name);
  const text = await readFile(path, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  if (text.trim() === "") {
    // Created but not written yet, unless it has stayed empty for long (its process died in between).
    const age = await stat(path).then(
      (s) => Date.now() - s.mtimeMs,
      () => Number.POSITIVE_INFINITY,
    );
    return age < 10_000 ? 0 : undefined;
  }
  const pid = Number.parseInt(text, 10);
  return pidAlive(pid) ? pid : undefined;
}

/** Pulls in this process that hold a lock, so that a second one waits instead of taking it over. */
const heldHere = new Set<string>();

/**
 * Takes the lock of `name`, waiting (polling every `pollMs`) while a live process holds it; `onWait` is told
 * the holder's pid once. Returns the release function.
 */
export async function acquireLock(
  cache: string,
  name: string,
  options: { signal?: AbortSignal | undefined; onWait?: (pid: number) => void; pollMs?: number } = {},
): Promise<() => Promise<void>> {
  const path = lockPath(cache, name);
  await mkdir(join(cache, "locks"), { recursive: true }).catch((error) => Promise.reject(writeError(path, error, "pull again")));
  let told = false;
  for (;;) {
    if (options.signal?.aborted)
      throw new AbortError("The pull was aborted while waiting for another one", { cause: options.signal.reason });
    if (!heldHere.has(path)) {
      try {
        const handle = await open(path, "wx");
        await handle.writeFile(String(process.pid));
        await handle.close();
        heldHere.add(path);
        return async () => {
          heldHere.delete(path);
          await rm(path, { force: true });
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw writeError(path, error, "pull again");
      }
      const holder = await lockHolder(cache, name);
      if (holder === undefined) {
        // Its process is gone (killed mid-pull): the lock is stale.
        await rm(path, { force: true });
        continue;
      }
      if (!told) options.onWait?.(holder);
    } else if (!told) options.onWait?.(process.pid);
    told = true;
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 250));
  }
}

/**
 * One file from the Hub into the cache: `<dest>.incomplete` grows with Range requests until it has every
 * byte, is checked against the size and hash the listing gave, and only then gets its final name. The
 * hash is computed while the bytes stream in; a resumed download first hashes the prefix already on disk.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { AbortError, IoError, ModelFormatError, PaliError, throwIfAborted } from "@pali/core";
import { writeError } from "./errors.js";
import { type HubContext, type HubResponse, hubError, hubFetch, isTransientStatus } from "./http.js";
import type { RemoteFile } from "./listing.js";
import type { HubFileSystem, Sink } from "./storage.js";

export interface DownloadOptions {
  fs: HubFileSystem;
  /** attempts in a row that may fail without a new byte arriving (default 5, as huggingface_hub) */
  retries: number;
  /** pause before a retry, doubled each time up to 8 s (default 1000 ms) */
  retryDelayMs: number;
  /** where the file stands (bytes on disk) and how many of them just came over the network */
  onProgress?: (fileDone: number, networkBytes: number) => void;
}

export function resolveUrl(ctx: HubContext, commit: string, path: string): string {
  const file = path.split("/").map(encodeURIComponent).join("/");
  return `${ctx.endpoint}/${ctx.repo}/resolve/${commit}/${file}`;
}

async function sizeOf(path: string): Promise<number | undefined> {
  return stat(path).then(
    (s) => s.size,
    () => undefined,
  );
}

/** The hash the listing gives for a file: SHA-256 for LFS files, the git blob SHA-1 otherwise. */
function newHasher(file: RemoteFile): { hash: Hash; expected: string; name: string } | undefined {
  if (file.sha256) return { hash: createHash("sha256"), expected: file.sha256, name: "SHA-256" };
  if (file.blobId) {
    const hash = createHash("sha1");
    hash.update(`blob ${file.size}\0`);
    return { hash, expected: file.blobId, name: "git blob SHA-1" };
  }
  return undefined;
}

async function hashPrefix(path: string, hash: Hash, signal: AbortSignal | undefined): Promise<void> {
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    throwIfAborted(signal);
    hash.update(chunk as Buffer);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted)
      return reject(new AbortError("The download was aborted; pull again to resume it", { cause: signal.reason }));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortError("The download was aborted; pull again to resume it", { cause: signal?.reason }));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** `bytes 100-199/200` → 100 */
function rangeStart(contentRange: string | null): number | undefined {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(contentRange?.trim() ?? "");
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** The server ended the body early, or the connection dropped: worth a retry from the byte we have. */
class Interrupted extends IoError {}

/**
 * Downloads `file` (at `commit`) to `dest`. Returns at once when `dest` already exists with the right size:
 * files only get their final name after verification.
 */
export async function downloadFile(
  file: RemoteFile,
  commit: string,
  dest: string,
  ctx: HubContext,
  options: DownloadOptions,
): Promise<void> {
  const { signal } = ctx;
  throwIfAborted(signal);
  if ((await sizeOf(dest)) === file.size) {
    options.onProgress?.(file.size, 0);
    return;
  }
  await mkdir(dirname(dest), { recursive: true });
  const partial = `${dest}.incomplete`;
  const retryHint = "pull again: the download resumes where it stopped";
  let have = (await sizeOf(partial)) ?? 0;
  if (have > file.size) {
    await rm(partial, { force: true });
    have = 0;
  }
  let hasher = newHasher(file);
  if (have > 0) {
    if (hasher) await hashPrefix(partial, hasher.hash, signal);
    options.onProgress?.(have, 0);
  }

  if (file.size === 0 && have === 0) {
    // Nothing to fetch, but the file must exist.
    const sink = await options.fs
      .openSink(partial, false)
      .catch((error) => Promise.reject(writeError(partial, error, retryHint)));
    await sink.close();
  }
  const url = resolveUrl(ctx, commit, file.path);
  let failures = 0;
  let lastError: unknown;
  while (have < file.size) {
    throwIfAborted(signal);
    if (failures > options.retries) throw lastError;
    if (failures > 0) await sleep(Math.min(8000, options.retryDelayMs * 2 ** (failures - 1)), signal);
    let res: HubResponse;
    try {
      res = await hubFetch(url, ctx, have > 0 ? { headers: { range: `bytes=${have}-` } } : {});
    } catch (error) {
      // A refused or reset connection is retried like a dropped one; an abort is not.
      if (error instanceof AbortError) throw error;
      failures++;
      lastError = error;
      continue;
    }
    const { response, hubHeaders } = res;
    if (!response.ok) {
      if (isTransientStatus(response.status) && failures < options.retries) {
        await response.body?.cancel().catch(() => {});
        failures++;
        lastError = await hubError(res, ctx, file.path);
        continue;
      }
      if (response.status === 416 && have > 0) {
        // The server will not serve the range we asked for: start this file over.
        await response.body?.cancel().catch(() => {});
        await rm(partial, { force: true });
        have = 0;
        hasher = newHasher(file);
        options.onProgress?.(0, 0);
        failures++;
        continue;
      }
      throw await hubError(res, ctx, file.path);
    }
    // The Hub says what the redirect points at; a mismatch with the listing means the repo changed.
    const linkedSize = hubHeaders.get("x-linked-size");
    const linkedEtag = hubHeaders.get("x-linked-etag")?.replace(/^W\//, "").replace(/"/g, "");
    const etagIsSha256 = linkedEtag !== undefined && /^[0-9a-f]{64}$/.test(linkedEtag);
    if ((linkedSize && Number(linkedSize) !== file.size) || (etagIsSha256 && file.sha256 && linkedEtag !== file.sha256)) {
      await response.body?.cancel().catch(() => {});
      throw new IoError(
        `${file.path} of ${ctx.repo} changed on the Hub while pulling (its size or hash differs from the listing). Pull again.`,
      );
    }
    let append = have > 0;
    if (have > 0 && (response.status !== 206 || rangeStart(response.headers.get("content-range")) !== have)) {
      // The server ignored the Range header: the body is the whole file, so start over.
      append = false;
      have = 0;
      hasher = newHasher(file);
      options.onProgress?.(0, 0);
    }
    let sink: Sink;
    try {
      sink = await options.fs.openSink(partial, append);
    } catch (error) {
      await response.body?.cancel().catch(() => {});
      throw writeError(partial, error, retryHint);
    }
    const before = have;
    try {
      if (!response.body) throw new Interrupted("no body");
      try {
        for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
          throwIfAborted(signal);
          if (have + chunk.length > file.size)
            throw new ModelFormatError(
              `The Hub sent more than the ${file.size} bytes its listing gives for ${file.path} of ${ctx.repo}; pull again.`,
            );
          try {
            await sink.write(chunk);
          } catch (error) {
            throw writeError(partial, error, retryHint);
          }
          hasher?.hash.update(chunk);
          have += chunk.length;
          options.onProgress?.(have, chunk.length);
        }
      } catch (error) {
        if (signal?.aborted) throw new AbortError("The download was aborted; pull again to resume it", { cause: signal.reason });
        if (error instanceof PaliError) throw error;
        // Anything else thrown by the body stream is the connection going away mid-file.
        throw new Interrupted((error as Error)?.message ?? String(error), { cause: error });
      }
      if (have < file.size) throw new Interrupted(`the body ended after ${have - before} bytes`);
    } catch (error) {
      await sink.close().catch(() => {});
      if (!(error instanceof Interrupted)) throw error;
      // Progress resets the count, as huggingface_hub does: only attempts that bring nothing add up.
      failures = have > before ? 1 : failures + 1;
      lastError = new IoError(
        `The connection to ${new URL(res.url).host} dropped while downloading ${file.path} (${error.message}). Check the network and ${retryHint}.`,
        { cause: error },
      );
      continue;
    }
    try {
      await sink.close();
    } catch (error) {
      throw writeError(partial, error, retryHint);
    }
  }

  if (hasher) {
    const got = hasher.hash.digest("hex");
    if (got !== hasher.expected) {
      await rm(partial, { force: true });
      throw new ModelFormatError(
        `${file.path} of ${ctx.repo}@${commit.slice(0, 12)} failed verification: its ${hasher.name} is ${got} but the Hub lists ${hasher.expected}. ` +
          "The corrupt download was deleted; pull again (if it fails again, something between you and the Hub changes the file).",
      );
    }
  }
  await rename(partial, dest);
}

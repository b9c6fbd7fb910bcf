/**
 * `pullModel`: a registry name or repo id → a verified, converted, quantized model in the cache. The Hub's
 * listing pins one commit; the checkpoint is downloaded into `downloads/<repo>/<commit>/` (resumable), checked
 * to be PaliGemma before the big files, converted into a staging folder and moved into place in one rename.
 */
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import {
  autoMmprojType,
  CONVERTER_VERSION,
  convertCheckpoint,
  type MmprojType,
  type ModelType,
  mmprojTypes,
  modelTypes,
  parsePaliGemmaConfig,
} from "@pali/convert";
import {
  AbortError,
  ErrorCode,
  expectAbortSignal,
  expectBoolean,
  expectInteger,
  expectNonEmptyString,
  expectOneOf,
  IoError,
  invalid,
  ModelFormatError,
  optional,
  PaliError,
  systemInfo,
  UnsupportedModelError,
} from "@pali/core";
import {
  type CachedModel,
  type CacheManifest,
  createStaging,
  downloadsDir,
  modelDir,
  publish,
  readCachedModel,
  removeStale,
  sha256File,
  writeManifest,
} from "./cache.js";
import { cacheDir, hubEndpoint, hubToken } from "./config.js";
import { downloadFile } from "./download.js";
import { isDiskFull, writeError } from "./errors.js";
import type { HubContext } from "./http.js";
import { checkpointFiles, listRepo, type RemoteFile } from "./listing.js";
import { acquireLock } from "./lock.js";
import { defaultRegistry, type ModelRef, parseRegistry, type RegistryEntry, resolveModelRef } from "./registry.js";
import { type HubFileSystem, nodeFileSystem } from "./storage.js";

export const DEFAULT_PULL_TYPE: ModelType = "q4_k_m";

export type PullProgress =
  /** another pull of the same model is running (pid); this one waits for it */
  | { phase: "wait"; pid: number }
  /** bytes of the checkpoint on disk (`done`, resumed ones included) and fetched by this pull (`transferred`) */
  | { phase: "download"; file: string; done: number; total: number; transferred: number }
  | { phase: "convert"; file: "model" | "mmproj"; tensor: string; done: number; total: number }
  /** hashing the GGUF files and writing the manifest */
  | { phase: "finalize" };

export interface PullOptions {
  /** decoder weights (default q4_k_m) */
  type?: ModelType;
  /** image encoder weights; "auto" (default): q8_0 on x86 CPUs with AVX2, else f16 (as `pali convert`) */
  mmprojType?: MmprojType | "auto";
  /** branch, tag or commit; default the registry's (PaliGemma 1: "bfloat16"), else "main" */
  revision?: string;
  signal?: AbortSignal;
  onProgress?: (progress: PullProgress) => void;
  /** default HF_ENDPOINT, else https://huggingface.co */
  endpoint?: string;
  /** default HF_TOKEN (then huggingface-cli's token file); false sends none */
  token?: string | false;
  /** default PALI_CACHE, else the platform's cache folder */
  cacheDir?: string;
  /** default: the registry shipped with @pali/hub (registry.json) */
  registry?: RegistryEntry[];
  /** keep the downloaded safetensors after converting (default false) */
  keepSource?: boolean;
  /** quantization threads (default: physical cores) */
  threads?: number;
  /** failed attempts in a row per file before giving up (default 5) */
  retries?: number;
  /** first pause between attempts, doubled each time (default 1000 ms) */
  retryDelayMs?: number;
  /** replaces file writes and the free-space query (tests simulate a full disk with it) */
  fs?: Partial<HubFileSystem>;
}

export interface PullResult {
  name: string;
  repo: string;
  /** the commit the model was converted from */
  revision: string;
  type: string;
  mmprojType: string;
  model: string;
  mmproj: string;
  /** true when the cache already had it and nothing was fetched */
  cached: boolean;
  dir: string;
}

interface Settings {
  type: ModelType;
  mmprojType: MmprojType;
  revision: string | undefined;
  signal: AbortSignal | undefined;
  keepSource: boolean;
  threads: number;
  retries: number;
  retryDelayMs: number;
  registry: RegistryEntry[];
  cache: string;
}

/** "auto" (the default): the convert's choice for this CPU, resolved here because it names the cached files. */
function mmprojTypeOf(value: unknown): MmprojType {
  const requested = optional(value, "auto" as MmprojType | "auto", (v) =>
    expectOneOf(v, "mmprojType", [...mmprojTypes, "auto"] as const),
  );
  return requested === "auto" ? autoMmprojType(systemInfo().cpuFeatures) : requested;
}

function settings(options: PullOptions): Settings {
  const registry = options.registry === undefined ? defaultRegistry() : parseRegistry({ models: options.registry });
  return {
    type: optional(options.type, DEFAULT_PULL_TYPE, (v) => expectOneOf(v, "type", modelTypes)),
    mmprojType: mmprojTypeOf(options.mmprojType),
    revision: optional(options.revision, undefined as string | undefined, (v) => expectNonEmptyString(v, "revision")),
    signal: expectAbortSignal(options.signal, "signal"),
    keepSource: optional(options.keepSource, false, (v) => expectBoolean(v, "keepSource")),
    threads: optional(options.threads, 0, (v) => expectInteger(v, "threads", 0, 1024)),
    retries: optional(options.retries, 5, (v) => expectInteger(v, "retries", 0, 100)),
    retryDelayMs: optional(options.retryDelayMs, 1000, (v) => expectInteger(v, "retryDelayMs", 0, 60_000)),
    registry,
    cache: cacheDir(optional(options.cacheDir, undefined as string | undefined, (v) => expectNonEmptyString(v, "cacheDir"))),
  };
}

function toResult(m: CachedModel, cached: boolean): PullResult {
  return {
    name: m.name,
    repo: m.repo,
    revision: m.revision,
    type: m.type,
    mmprojType: m.mmprojType,
    model: m.model,
    mmproj: m.mmproj,
    cached,
    dir: m.dir,
  };
}

/** A cached model answers a pull when it is the same repo and types, and the revision asked for (if any). */
async function findCached(s: Settings, ref: ModelRef): Promise<CachedModel | undefined> {
  const m = await readCachedModel(modelDir(s.cache, ref.name, s.type));
  if (!m || m.mmprojType !== s.mmprojType || m.repo.toLowerCase() !== ref.repo.toLowerCase()) return undefined;
  const r = s.revision;
  if (r === undefined || r === m.manifest.requestedRevision || r === m.revision) return m;
  return /^[0-9a-f]{7,40}$/.test(r) && m.revision.startsWith(r) ? m : undefined;
}

function formatBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/** config.json says PaliGemma and parses, before gigabytes of weights are fetched. */
async function checkConfig(source: string, repo: string): Promise<void> {
  let config: { model_type?: unknown };
  try {
    config = JSON.parse(await readFile(join(source, "config.json"), "utf8"));
  } catch (cause) {
    throw new ModelFormatError(`The config.json of ${repo} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  if (config?.model_type !== "paligemma")
    throw new UnsupportedModelError(
      `${repo} is a ${JSON.stringify(config?.model_type)} model, not PaliGemma. pali pulls PaliGemma 1 and 2 checkpoints: run \`pali ls --available\` for the official ones.`,
    );
  parsePaliGemmaConfig(config);
}

/** The weight files the index names (all top-level safetensors when there is no index). */
async function neededWeights(source: string, weights: RemoteFile[], repo: string): Promise<RemoteFile[]> {
  let text: string;
  try {
    text = await readFile(join(source, "model.safetensors.index.json"), "utf8");
  } catch {
    return weights;
  }
  let map: Record<string, unknown> | undefined;
  try {
    map = (JSON.parse(text) as { weight_map?: Record<string, unknown> }).weight_map;
  } catch (cause) {
    throw new ModelFormatError(`The model.safetensors.index.json of ${repo} is not valid JSON`, { cause });
  }
  if (typeof map !== "object" || map === null)
    throw new ModelFormatError(`The model.safetensors.index.json of ${repo} has no weight_map`);
  const names = new Set(Object.values(map).map(String));
  for (const n of names)
    if (!weights.some((w) => w.path === n))
      throw new ModelFormatError(`The model.safetensors.index.json of ${repo} names ${n}, which the repo does not have`);
  return weights.filter((w) => names.has(w.path));
}

async function onDisk(path: string): Promise<number> {
  for (const p of [path, `${path}.incomplete`]) {
    const s = await stat(p).catch(() => undefined);
    if (s) return s.size;
  }
  return 0;
}

/** Removes the downloaded checkpoint and the folders above it that become empty. */
async function removeSource(cache: string, source: string): Promise<void> {
  await rm(source, { recursive: true, force: true });
  const top = join(cache, "downloads");
  for (let dir = dirname(source); dir.startsWith(top); dir = dirname(dir)) {
    const left = await readdir(dir).catch(() => ["?"]);
    if (left.length > 0) break;
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Pulls `nameOrRepo` (a registry name such as `pg2-3b-mix-448`, a repo id, `hf:owner/name` or a Hub URL) into
 * the cache and returns the paths of its two GGUF files. A model already in the cache comes back at once,
 * without touching the network.
 */
export async function pullModel(nameOrRepo: string, options: PullOptions = {}): Promise<PullResult> {
  try {
    return await pull(nameOrRepo, options);
  } catch (error) {
    // One message for an interrupted pull, wherever it stopped (waiting, downloading, converting, hashing).
    if (error instanceof PaliError && error.code === ErrorCode.Aborted)
      throw new AbortError(
        `The pull of ${String(nameOrRepo)} was interrupted. Run it again to resume: what was downloaded is kept.`,
        { cause: error },
      );
    throw error;
  }
}

async function pull(nameOrRepo: string, options: PullOptions): Promise<PullResult> {
  const input = expectNonEmptyString(nameOrRepo, "model");
  const s = settings(options);
  const ref = resolveModelRef(input, s.registry, s.revision);
  const hit = await findCached(s, ref);
  if (hit) return toResult(hit, true);

  const endpoint = hubEndpoint(
    optional(options.endpoint, undefined as string | undefined, (v) => expectNonEmptyString(v, "endpoint")),
  );
  if (options.token !== undefined && options.token !== false && typeof options.token !== "string")
    throw invalid("string or false", "token", options.token);
  const ctx: HubContext = { endpoint, token: hubToken(options.token), repo: ref.repo, revision: ref.revision, signal: s.signal };
  const fs: HubFileSystem = { ...nodeFileSystem, ...options.fs };
  const emit = options.onProgress ?? (() => {});

  const release = await acquireLock(s.cache, ref.name, { signal: s.signal, onWait: (pid) => emit({ phase: "wait", pid }) });
  try {
    // Another process may have pulled it while this one waited.
    const done = await findCached(s, ref);
    if (done) return toResult(done, true);
    await removeStale(s.cache, ref.name);

    const listing = await listRepo(ctx);
    const { small, weights } = checkpointFiles(listing);
    const source = downloadsDir(s.cache, ref.repo, listing.commit);
    const positions = new Map<string, number>();
    let total = [...small, ...weights].reduce((n, f) => n + f.size, 0);
    let transferred = 0;
    const download = async (f: RemoteFile) =>
      downloadFile(f, listing.commit, join(source, f.path), ctx, {
        fs,
        retries: s.retries,
        retryDelayMs: s.retryDelayMs,
        onProgress: (fileDone, networkBytes) => {
          positions.set(f.path, fileDone);
          transferred += networkBytes;
          let sum = 0;
          for (const v of positions.values()) sum += v;
          emit({ phase: "download", file: f.path, done: sum, total, transferred });
        },
      });

    for (const f of small) await download(f);
    await checkConfig(source, ref.repo);
    const needed = await neededWeights(source, weights, ref.repo);
    total = [...small, ...needed].reduce((n, f) => n + f.size, 0);
    let missing = 0;
    for (const f of needed) missing += f.size - Math.min(f.size, await onDisk(join(source, f.path)));
    const free = await fs.freeBytes(source);
    if (free !== undefined && free < missing + 64 * 2 ** 20)
      throw new IoError(
        `Pulling ${ref.name} needs ${formatBytes(missing)} more in ${source}, but only ${formatBytes(free)} is free there. ` +
          "Free some space or set PALI_CACHE to a larger disk, then pull again (what is downloaded is kept).",
      );
    for (const f of needed) await download(f);

    const staging = await createStaging(s.cache, ref.name, s.type);
    const finalDir = modelDir(s.cache, ref.name, s.type);
    try {
      const converted = await convertCheckpoint({
        input: source,
        outDir: staging,
        type: s.type,
        mmprojType: s.mmprojType,
        name: ref.name,
        threads: s.threads,
        ...(s.signal ? { signal: s.signal } : {}),
        onProgress: (p) => emit({ phase: "convert", file: p.file, tensor: p.tensor, done: p.done, total: p.total }),
      });
      emit({ phase: "finalize" });
      const describe = async (path: string) => ({
        file: basename(path),
        size: (await stat(path)).size,
        sha256: await sha256File(path, s.signal),
      });
      const manifest: CacheManifest = {
        format: 1,
        name: ref.name,
        repo: ref.repo,
        revision: listing.commit,
        requestedRevision: ref.revision,
        type: s.type,
        mmprojType: s.mmprojType,
        model: await describe(converted.model),
        mmproj: await describe(converted.mmproj),
        source: [...small, ...needed].map((f) => ({ path: f.path, size: f.size, ...(f.sha256 ? { sha256: f.sha256 } : {}) })),
        converter: CONVERTER_VERSION,
        createdAt: new Date().toISOString(),
      };
      await writeManifest(staging, manifest);
      await publish(staging, finalDir);
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      if (isDiskFull(error))
        throw writeError(staging, error, "pull again: the download is kept and only the conversion runs again");
      if (error instanceof PaliError) throw error;
      throw new IoError(`Could not convert ${ref.repo}: ${(error as Error).message}`, { cause: error });
    }
    if (!s.keepSource) await removeSource(s.cache, source);
    const result = await readCachedModel(finalDir);
    if (!result) throw new IoError(`${finalDir} vanished right after it was written; pull again`);
    return toResult(result, false);
  } finally {
    await release();
  }
}

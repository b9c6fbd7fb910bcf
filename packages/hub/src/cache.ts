/**
 * The model cache: `models/<name>/<type>/` holds the two GGUF files and `manifest.json`. A folder only gets
 * that final name, by one rename, once both files and the manifest are complete, so the cache never shows a
 * half-written model; staging and trash folders start with "." and are skipped by every reader.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { InvalidArgumentError, IoError, throwIfAborted } from "@pali/core";
import { cacheDir } from "./config.js";
import { writeError } from "./errors.js";
import { lockHolder, pidAlive } from "./lock.js";
import { defaultRegistry, type RegistryEntry, resolveModelRef } from "./registry.js";

export const MANIFEST = "manifest.json";

export interface ManifestFile {
  /** file name inside the model folder */
  file: string;
  size: number;
  sha256: string;
}

export interface CacheManifest {
  format: 1;
  name: string;
  repo: string;
  /** the commit the Hub resolved the requested revision to */
  revision: string;
  /** what was asked for: a branch, tag or commit */
  requestedRevision: string;
  type: string;
  mmprojType: string;
  model: ManifestFile;
  mmproj: ManifestFile;
  /** the checkpoint files it was converted from, as the Hub listed them */
  source: { path: string; size: number; sha256?: string }[];
  converter: string;
  /** ISO 8601 */
  createdAt: string;
}

export interface CachedModel {
  name: string;
  type: string;
  mmprojType: string;
  repo: string;
  revision: string;
  /** absolute paths */
  model: string;
  mmproj: string;
  dir: string;
  /** bytes of both files */
  size: number;
  createdAt: string;
  manifest: CacheManifest;
}

export function modelsRoot(cache: string): string {
  return join(cache, "models");
}

export function modelDir(cache: string, name: string, type: string): string {
  return join(cache, "models", name, type);
}

export function downloadsDir(cache: string, repo: string, commit?: string): string {
  return commit ? join(cache, "downloads", ...repo.split("/"), commit) : join(cache, "downloads", ...repo.split("/"));
}

function isManifestFile(v: unknown): v is ManifestFile {
  const f = v as ManifestFile | undefined;
  return (
    typeof f?.file === "string" &&
    !/[/\\]/.test(f.file) &&
    Number.isSafeInteger(f.size) &&
    typeof f.sha256 === "string" &&
    /^[0-9a-f]{64}$/.test(f.sha256)
  );
}

/** The manifest of a model folder when it is complete and its files have the sizes it records. */
export async function readCachedModel(dir: string): Promise<CachedModel | undefined> {
  let manifest: CacheManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as CacheManifest;
  } catch {
    return undefined;
  }
  if (
    manifest?.format !== 1 ||
    typeof manifest.name !== "string" ||
    typeof manifest.repo !== "string" ||
    typeof manifest.revision !== "string" ||
    typeof manifest.type !== "string" ||
    !isManifestFile(manifest.model) ||
    !isManifestFile(manifest.mmproj)
  )
    return undefined;
  const model = join(dir, manifest.model.file);
  const mmproj = join(dir, manifest.mmproj.file);
  const [a, b] = await Promise.all([stat(model).catch(() => undefined), stat(mmproj).catch(() => undefined)]);
  if (a?.size !== manifest.model.size || b?.size !== manifest.mmproj.size) return undefined;
  return {
    name: manifest.name,
    type: manifest.type,
    mmprojType: manifest.mmprojType,
    repo: manifest.repo,
    revision: manifest.revision,
    model,
    mmproj,
    dir,
    size: a.size + b.size,
    createdAt: manifest.createdAt,
    manifest,
  };
}

export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    throwIfAborted(signal);
    hash.update(chunk as Buffer);
  }
  return hash.digest("hex");
}

/** Writes the manifest beside the files, through a temporary name and a rename. */
export async function writeManifest(dir: string, manifest: CacheManifest): Promise<void> {
  const path = join(dir, MANIFEST);
  const temp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(temp, `${JSON.stringify(manifest, null, 2)}\n`);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw writeError(path, error, "pull again");
  }
}

/** A fresh staging folder beside the final one: `.staging-<type>-<pid>-<n>`. */
export async function createStaging(cache: string, name: string, type: string): Promise<string> {
  const parent = join(modelsRoot(cache), name);
  await mkdir(parent, { recursive: true }).catch((error) => Promise.reject(writeError(parent, error, "pull again")));
  const dir = join(parent, `.staging-${type}-${process.pid}-${Date.now().toString(36)}`);
  await mkdir(dir).catch((error) => Promise.reject(writeError(dir, error, "pull again")));
  return dir;
}

/** Removes staging and trash folders that killed processes left in `models/<name>/`. */
export async function removeStale(cache: string, name: string): Promise<void> {
  const parent = join(modelsRoot(cache), name);
  const entries = await readdir(parent).catch(() => [] as string[]);
  for (const entry of entries) {
    const m = /^\.(?:staging|trash)-.*-(\d+)-[0-9a-z]+$/.exec(entry);
    if (m?.[1] !== undefined && !pidAlive(Number(m[1]))) await rm(join(parent, entry), { recursive: true, force: true });
  }
}

/** Moves a complete staging folder to its final name, replacing an older entry if there is one. */
export async function publish(staging: string, finalDir: string): Promise<void> {
  const trash = join(dirname(finalDir), `.trash-${basename(finalDir)}-${process.pid}-${Date.now().toString(36)}`);
  const hadOld = await stat(finalDir).then(
    () => true,
    () => false,
  );
  try {
    if (hadOld) await rename(finalDir, trash);
    await rename(staging, finalDir);
  } catch (error) {
    throw new IoError(`Could not move the converted model into ${finalDir}: ${(error as Error).message}`, { cause: error });
  }
  if (hadOld) await rm(trash, { recursive: true, force: true });
}

export interface CacheOptions {
  cacheDir?: string;
  registry?: RegistryEntry[];
}

/** Every complete model in the cache, by name then type. */
export async function listCachedModels(options: CacheOptions = {}): Promise<CachedModel[]> {
  const root = modelsRoot(cacheDir(options.cacheDir));
  const found: CachedModel[] = [];
  for (const name of (await readdir(root).catch(() => [] as string[])).sort()) {
    if (name.startsWith(".")) continue;
    for (const type of (await readdir(join(root, name)).catch(() => [] as string[])).sort()) {
      if (type.startsWith(".")) continue;
      const model = await readCachedModel(join(root, name, type));
      if (model) found.push(model);
    }
  }
  return found;
}

/** The cache folder name of what the user typed: a folder already in the cache, a registry name or a repo id. */
async function cacheNameOf(input: string, cache: string, registry: RegistryEntry[]): Promise<string> {
  const direct = input.trim();
  if (/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(direct) && (await stat(join(modelsRoot(cache), direct)).catch(() => undefined)))
    return direct;
  return resolveModelRef(direct, registry).name;
}

/**
 * Removes one model (all its types, or only `type`) from the cache, and the downloaded checkpoint kept with
 * `keepSource` once no type of it is left. Returns what was removed.
 */
export async function removeCachedModel(
  nameOrRepo: string,
  options: CacheOptions & { type?: string } = {},
): Promise<CachedModel[]> {
  const cache = cacheDir(options.cacheDir);
  const name = await cacheNameOf(nameOrRepo, cache, options.registry ?? defaultRegistry());
  const all = (await listCachedModels({ cacheDir: cache })).filter((m) => m.name === name);
  const victims = options.type === undefined ? all : all.filter((m) => m.type === options.type);
  if (victims.length === 0) {
    const types = all.map((m) => m.type).join(", ");
    throw new InvalidArgumentError(
      options.type !== undefined && all.length > 0
        ? `${name} is cached as ${types}, not ${options.type}. Run \`pali ls\` to see the cache.`
        : `${name} is not in the cache (${cache}). Run \`pali ls\` to see the cache.`,
    );
  }
  for (const m of victims) {
    // Rename first, so no reader ever sees a folder that is half deleted.
    const trash = join(modelsRoot(cache), name, `.trash-${m.type}-${process.pid}-${Date.now().toString(36)}`);
    try {
      await rename(m.dir, trash);
      await rm(trash, { recursive: true, force: true });
    } catch (error) {
      throw new IoError(`Could not remove ${m.dir}: ${(error as Error).message}`, { cause: error });
    }
  }
  // The kept checkpoint goes with the last type, unless a pull of this model is running right now.
  const remaining = await readdir(join(modelsRoot(cache), name)).catch(() => [] as string[]);
  if (remaining.length === 0 && !(await lockHolder(cache, name))) {
    await rm(join(modelsRoot(cache), name), { recursive: true, force: true });
    const repo = victims[0]?.repo;
    if (repo) await rm(downloadsDir(cache, repo), { recursive: true, force: true });
  }
  return victims;
}

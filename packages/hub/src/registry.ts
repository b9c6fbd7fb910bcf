/**
 * The registry of official PaliGemma checkpoints (models/registry.json) and the one function that turns what
 * a user typed (a short name, a repo id, an `hf:` URI or a Hub URL) into the entry to pull.
 */
import { readFileSync } from "node:fs";
import { InvalidArgumentError, ModelFormatError } from "@pali/core";

export interface RegistryFile {
  /** repo-relative path */
  path: string;
  /** bytes, only where confirmed; the Hub's API gives the authoritative size at pull time */
  size?: number;
}

export interface RegistryEntry {
  /** the short name, also the cache folder: `pg2-3b-mix-448` */
  name: string;
  /** Hugging Face repo id: `google/paligemma2-3b-mix-448` */
  repo: string;
  version: 1 | 2;
  /** "3B", "10B", "28B" */
  params: string;
  resolution: 224 | 448 | 896;
  kind: "pt" | "mix";
  goodFor: string;
  gated: boolean;
  /** branch pulled by default (PaliGemma 1: "bfloat16"); "main" when absent */
  revision?: string;
  files?: RegistryFile[];
}

/** A model to pull: a registry entry, or a repo that is not in the registry (then `known` is false). */
export interface ModelRef {
  name: string;
  repo: string;
  revision: string;
  known: boolean;
  entry?: RegistryEntry;
}

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function isRepoId(value: string): boolean {
  return REPO_ID.test(value) && !value.includes("..") && !value.endsWith(".git");
}

function fail(what: string): never {
  throw new ModelFormatError(`models/registry.json: ${what}`);
}

/** Checks one parsed entry; the registry is data, so it is validated like any other input. */
function parseEntry(value: unknown, index: number): RegistryEntry {
  if (typeof value !== "object" || value === null) fail(`models[${index}] is not an object`);
  const v = value as Record<string, unknown>;
  const str = (key: string): string => {
    if (typeof v[key] !== "string" || v[key] === "") fail(`models[${index}].${key} should be a non-empty string`);
    return v[key] as string;
  };
  const name = str("name");
  const repo = str("repo");
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) fail(`models[${index}].name ${JSON.stringify(name)} is not a short lower-case name`);
  if (!isRepoId(repo)) fail(`models[${index}].repo ${JSON.stringify(repo)} is not owner/name`);
  if (v.version !== 1 && v.version !== 2) fail(`models[${index}].version should be 1 or 2`);
  if (v.resolution !== 224 && v.resolution !== 448 && v.resolution !== 896)
    fail(`models[${index}].resolution should be 224, 448 or 896`);
  if (v.kind !== "pt" && v.kind !== "mix") fail(`models[${index}].kind should be "pt" or "mix"`);
  if (typeof v.gated !== "boolean") fail(`models[${index}].gated should be a boolean`);
  const entry: RegistryEntry = {
    name,
    repo,
    version: v.version,
    params: str("params"),
    resolution: v.resolution,
    kind: v.kind,
    goodFor: str("goodFor"),
    gated: v.gated,
  };
  if (v.revision !== undefined) entry.revision = str("revision");
  if (v.files !== undefined) {
    if (!Array.isArray(v.files)) fail(`models[${index}].files should be an array`);
    entry.files = v.files.map((f: unknown, j) => {
      const file = f as Record<string, unknown>;
      if (typeof file?.path !== "string") fail(`models[${index}].files[${j}].path should be a string`);
      if (file.size !== undefined && (typeof file.size !== "number" || !Number.isInteger(file.size) || file.size < 0))
        fail(`models[${index}].files[${j}].size should be a byte count`);
      return file.size === undefined ? { path: file.path } : { path: file.path, size: file.size as number };
    });
  }
  return entry;
}

export function parseRegistry(json: unknown): RegistryEntry[] {
  const models = (json as { models?: unknown } | null)?.models;
  if (!Array.isArray(models)) fail("no models array");
  const entries = models.map(parseEntry);
  const names = new Set<string>();
  for (const e of entries) {
    if (names.has(e.name)) fail(`the name ${e.name} appears twice`);
    names.add(e.name);
  }
  return entries;
}

let builtin: RegistryEntry[] | undefined;

/** The registry shipped in models/registry.json (read once; src/ and dist/ sit at the same depth). */
export function defaultRegistry(): RegistryEntry[] {
  if (builtin === undefined) {
    const url = new URL("../../../models/registry.json", import.meta.url);
    let text: string;
    try {
      text = readFileSync(url, "utf8");
    } catch (cause) {
      throw new ModelFormatError(`Could not read the model registry ${url.pathname}: ${(cause as Error).message}`, { cause });
    }
    builtin = parseRegistry(JSON.parse(text));
  }
  return builtin;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/** Cache folder name of a repo that is not in the registry: `owner--name`, as the Hub's own cache spells it. */
export function repoCacheName(repo: string): string {
  return repo.replace("/", "--").toLowerCase();
}

/**
 * A short name (`pg2-3b-mix-448`), a repo id (`google/paligemma2-3b-mix-448`), `hf:owner/name` or
 * `https://huggingface.co/owner/name` → what to pull. An explicit revision wins over the registry's.
 */
export function resolveModelRef(input: string, registry: RegistryEntry[], revision?: string): ModelRef {
  let text = input.trim();
  const lower = text.toLowerCase();
  const byName = registry.find((e) => e.name === lower);
  if (byName)
    return { name: byName.name, repo: byName.repo, revision: revision ?? byName.revision ?? "main", known: true, entry: byName };
  text = text.replace(/^hf:/i, "").replace(/^https?:\/\/(www\.)?(huggingface\.co|hf\.co)\//i, "");
  text = text.replace(/\/(tree|blob)\/[^/]+\/?$/, "").replace(/\/$/, "");
  if (isRepoId(text)) {
    const byRepo = registry.find((e) => e.repo.toLowerCase() === text.toLowerCase());
    if (byRepo)
      return {
        name: byRepo.name,
        repo: byRepo.repo,
        revision: revision ?? byRepo.revision ?? "main",
        known: true,
        entry: byRepo,
      };
    return { name: repoCacheName(text), repo: text, revision: revision ?? "main", known: false };
  }
  const close = registry
    .map((e) => ({ name: e.name, d: editDistance(lower, e.name) }))
    .filter((c) => c.d <= 3)
    .sort((a, b) => a.d - b.d)
    .slice(0, 3)
    .map((c) => c.name);
  const hint = close.length > 0 ? ` Did you mean ${close.join(" or ")}?` : "";
  throw new InvalidArgumentError(
    `Unknown model ${JSON.stringify(input)}: not a name in pali's registry and not a Hugging Face repo id (owner/name).${hint} ` +
      "Run `pali ls --available` for the names pali knows.",
  );
}

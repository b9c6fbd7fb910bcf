/**
 * The registry of official PaliGemma checkpoints (registry.json at this package's root, shipped in its `files`;
 * models/registry.json links to it) and the one function that turns what a user typed (a short name, a repo id,
 * an `hf:` URI or a Hub URL) into the entry to pull.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { InvalidArgumentError, ModelFormatError } from "@pali/core";

/** What a checkpoint was trained to do; the prompt builders of @pali/tasks cover each. */
export const REGISTRY_TASKS = ["caption", "ocr", "vqa", "question", "detect", "segment"] as const;
export type RegistryTaskName = (typeof REGISTRY_TASKS)[number];

/** The parts a prompt template leaves to fill in, as `{name}`. */
export const PROMPT_FIELDS = ["lang", "question", "answer", "objects", "expression", "statement", "choices", "context"] as const;

export interface RegistryTask {
  task: RegistryTaskName;
  /** the prompt the checkpoint saw in training, `{field}` for the parts to fill in: `answer en {question}` */
  prompt: string;
}

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
  /** pretrained, mixture of tasks, or fine-tuned on one benchmark */
  kind: "pt" | "mix" | "ft";
  goodFor: string;
  gated: boolean;
  /** the tasks and prompt formats it was trained for, most specific first */
  tasks: RegistryTask[];
  /** images one prompt takes (NLVR2: 2); 1 when absent */
  images?: number;
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
  throw new ModelFormatError(`The model registry (registry.json): ${what}`);
}

function parseTask(value: unknown, where: string): RegistryTask {
  if (typeof value !== "object" || value === null) fail(`${where} should be an object { task, prompt }`);
  const v = value as Record<string, unknown>;
  if (!(REGISTRY_TASKS as readonly unknown[]).includes(v.task))
    fail(`${where}.task should be one of ${REGISTRY_TASKS.join(", ")}, not ${JSON.stringify(v.task)}`);
  if (typeof v.prompt !== "string" || v.prompt.trim() === "") fail(`${where}.prompt should be a non-empty string`);
  for (const m of v.prompt.matchAll(/\{([^{}]*)\}/g)) {
    if (!(PROMPT_FIELDS as readonly string[]).includes(m[1] as string))
      fail(
        `${where}.prompt has {${m[1]}}; the fields a prompt can leave open are ${PROMPT_FIELDS.map((f) => `{${f}}`).join(", ")}`,
      );
  }
  if (/[{}]/.test(v.prompt.replace(/\{[^{}]*\}/g, ""))) fail(`${where}.prompt has an unmatched brace`);
  for (const key of Object.keys(v)) if (key !== "task" && key !== "prompt") fail(`${where} has an unknown field ${key}`);
  return { task: v.task as RegistryTaskName, prompt: v.prompt };
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
  if (v.kind !== "pt" && v.kind !== "mix" && v.kind !== "ft") fail(`models[${index}].kind should be "pt", "mix" or "ft"`);
  if (typeof v.gated !== "boolean") fail(`models[${index}].gated should be a boolean`);
  if (!Array.isArray(v.tasks) || v.tasks.length === 0)
    fail(`models[${index}].tasks should be a non-empty array of { task, prompt }`);
  const tasks = v.tasks.map((t: unknown, j) => parseTask(t, `models[${index}].tasks[${j}]`));
  if (v.images !== undefined && (typeof v.images !== "number" || !Number.isInteger(v.images) || v.images < 1 || v.images > 16))
    fail(`models[${index}].images should be an image count from 1 to 16`);
  const entry: RegistryEntry = {
    name,
    repo,
    version: v.version,
    params: str("params"),
    resolution: v.resolution,
    kind: v.kind,
    goodFor: str("goodFor"),
    gated: v.gated,
    tasks,
  };
  if (typeof v.images === "number" && v.images !== 1) entry.images = v.images;
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

/**
 * Where the shipped registry is: registry.json at the root of this package (src/ and dist/ sit one level
 * below it), so an installed @pali/hub finds it inside its own folder in node_modules.
 */
export function registryPath(): string {
  return fileURLToPath(new URL("../registry.json", import.meta.url));
}

/** The registry shipped with this package (read once). */
export function defaultRegistry(): RegistryEntry[] {
  if (builtin === undefined) {
    const path = registryPath();
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, "utf8"));
    } catch (cause) {
      throw new ModelFormatError(
        `Could not read the model registry ${path}: ${(cause as Error).message}. Reinstall @pali/hub; the file ships in the package.`,
        { cause },
      );
    }
    builtin = parseRegistry(json);
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

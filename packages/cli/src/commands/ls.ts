/** `pali ls [--available]`: the models in pali's cache, with sizes; or the models pali's registry knows. */
import { type CacheOptions, cacheDir, defaultRegistry, listCachedModels, type RegistryEntry } from "@pali/hub";
import { formatBytes, type Io } from "../output.js";

export const lsHelp = `Usage: pali ls [--available] [--json]

Lists the models in pali's cache (PALI_CACHE; default ~/.cache/pali): name, weight type, size on disk, the
Hub repo and commit they were converted from, and when they were pulled.

Options:
      --available   list the models pali can pull instead (its registry), marking the cached ones, with the
                    tasks each was trained for (and the prompt format, for single-task fine-tunes)
      --json        print a JSON array and nothing else
`;

export interface LsCliOptions {
  available: boolean;
  json: boolean;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("  ")).join("\n");
}

/** The tasks an entry was trained for, once each, and its prompt when it was trained on one: `vqa: "{question}"`. */
export function taskSummary(entry: RegistryEntry): string {
  const names = [...new Set(entry.tasks.map((t) => t.task))].join(",");
  const prompts = [...new Set(entry.tasks.map((t) => t.prompt))];
  const images = entry.images !== undefined && entry.images > 1 ? ` (${entry.images} images)` : "";
  const only = prompts.length === 1 ? prompts[0] : undefined;
  return only === undefined ? `${names}${images}` : `${names}: "${only.replaceAll("\n", "\\n")}"${images}`;
}

/** `cache` overrides the cache folder and registry (tests). */
export async function ls(options: LsCliOptions, io: Io, cache: CacheOptions = {}): Promise<number> {
  const models = await listCachedModels(cache);
  if (options.available) {
    const registry = cache.registry ?? defaultRegistry();
    const cachedTypes = (name: string) => models.filter((m) => m.name === name).map((m) => m.type);
    if (options.json) {
      io.stdout(`${JSON.stringify(registry.map((e) => ({ ...e, cached: cachedTypes(e.name) })))}\n`);
      return 0;
    }
    const rows = [["NAME", "REPO", "CACHED", "TASKS", "GOOD FOR"]];
    for (const e of registry) rows.push([e.name, e.repo, cachedTypes(e.name).join(",") || "-", taskSummary(e), e.goodFor]);
    io.stdout(`${table(rows)}\n\nPull one with: pali pull NAME [--type q4_k_m]. The repos are gated: see pali pull --help.\n`);
    return 0;
  }
  if (options.json) {
    const rows = models.map((m) => ({
      name: m.name,
      type: m.type,
      mmprojType: m.mmprojType,
      repo: m.repo,
      revision: m.revision,
      size: m.size,
      model: m.model,
      mmproj: m.mmproj,
      createdAt: m.createdAt,
    }));
    io.stdout(`${JSON.stringify(rows)}\n`);
    return 0;
  }
  const dir = cacheDir(cache.cacheDir);
  if (models.length === 0) {
    io.stdout(`No models in the cache (${dir}). Pull one with: pali pull pg2-3b-mix-224\n`);
    return 0;
  }
  const rows = [["NAME", "TYPE", "SIZE", "REPO", "REVISION", "PULLED"]];
  for (const m of models)
    rows.push([m.name, m.type, formatBytes(m.size), m.repo, m.revision.slice(0, 12), m.createdAt.slice(0, 10)]);
  const total = models.reduce((n, m) => n + m.size, 0);
  io.stdout(`${table(rows)}\n\n${models.length} model(s), ${formatBytes(total)} in ${dir}\n`);
  return 0;
}

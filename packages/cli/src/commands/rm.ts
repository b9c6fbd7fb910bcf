/** `pali rm NAME [--type TYPE]`: removes a model from pali's cache. */
import { InvalidArgumentError } from "@pali/core";
import { type CacheOptions, removeCachedModel } from "@pali/hub";
import { formatBytes, type Io } from "../output.js";

export const rmHelp = `Usage: pali rm NAME|REPO [--type TYPE] [--json]

Removes a model from pali's cache: every weight type of it, or only --type. The downloaded checkpoint
kept by pali pull --keep-source goes with the last type. pali ls shows what is cached.

Options:
  -t, --type TYPE   remove only this weight type (such as q4_k_m)
      --json        print {"removed": [{"name", "type", "size"}]} and nothing else
`;

export interface RmCliOptions {
  name: string | undefined;
  type: string | undefined;
  json: boolean;
}

/** `cache` overrides the cache folder and registry (tests). */
export async function rm(options: RmCliOptions, io: Io, cache: CacheOptions = {}): Promise<number> {
  if (!options.name) throw new InvalidArgumentError("pali rm needs a model: pali rm NAME [--type TYPE] (pali ls lists them)");
  const removed = await removeCachedModel(options.name, {
    ...cache,
    ...(options.type !== undefined ? { type: options.type } : {}),
  });
  if (options.json) {
    io.stdout(`${JSON.stringify({ removed: removed.map((m) => ({ name: m.name, type: m.type, size: m.size })) })}\n`);
    return 0;
  }
  for (const m of removed) io.stdout(`removed ${m.name} (${m.type}, ${formatBytes(m.size)})\n`);
  return 0;
}

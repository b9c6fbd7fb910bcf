/**
 * `resolveModel`: what `PaliGemma.load({ model })` was given → the GGUF files to load. A path is used as it
 * is; a registry name or repo id comes from the cache, pulled first when it is not there yet.
 */
import { readdir, stat } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { expectNonEmptyString, findMmprojBeside, InvalidArgumentError, IoError, isModelFileName } from "@pali/core";
import { MANIFEST, readCachedModel } from "./cache.js";
import { type PullOptions, pullModel } from "./pull.js";

export interface ResolvedModel {
  model: string;
  /** undefined when `model` was a GGUF path with no mmproj file beside it */
  mmproj: string | undefined;
  /** false only when this call downloaded and converted it */
  cached: boolean;
  /** the cache name, for registry names and repo ids */
  name?: string;
}

function looksLikePath(value: string): boolean {
  return (
    isAbsolute(value) ||
    /^\.{1,2}([/\\]|$)/.test(value) ||
    value.startsWith("~") ||
    value.includes("\\") ||
    /\.gguf$/i.test(value)
  );
}

/**
 * A path to a model GGUF file, a cached model folder (with manifest.json), a registry name or a repo id →
 * the model and mmproj paths. Names and repo ids are pulled into the cache when missing.
 */
export async function resolveModel(nameOrRepoOrPath: string, options: PullOptions = {}): Promise<ResolvedModel> {
  const input = expectNonEmptyString(nameOrRepoOrPath, "model").trim();
  const asPath = resolve(input.startsWith("~") ? input.replace(/^~/, process.env.HOME ?? "~") : input);
  const info = await stat(asPath).catch(() => undefined);
  if (info?.isDirectory()) {
    const cached = await readCachedModel(asPath);
    if (cached) return { model: cached.model, mmproj: cached.mmproj, cached: true, name: cached.name };
    // An existing folder is never looked up on the Hub under the same name.
    const models = (await readdir(asPath).catch(() => [] as string[])).filter(isModelFileName);
    throw new InvalidArgumentError(
      models.length > 0
        ? `${input} is a folder: pass its model file, e.g. ${join(input, models.sort()[0] as string)}`
        : `${input} is a folder without a complete ${MANIFEST}: pass a model .gguf file, a cached model folder or a model name. To convert a checkpoint folder, run \`pali convert\`.`,
    );
  } else if (info?.isFile()) {
    if (!/\.gguf$/i.test(asPath))
      throw new InvalidArgumentError(`${input} is not a .gguf file: pass a model GGUF, or a model name.`);
    return { model: asPath, mmproj: await findMmprojBeside(asPath), cached: true };
  } else if (looksLikePath(input)) {
    throw new IoError(`${input} does not exist. Pass an existing .gguf file, or a model name such as pg2-3b-mix-224.`);
  }
  const pulled = await pullModel(input, options);
  return { model: pulled.model, mmproj: pulled.mmproj, cached: pulled.cached, name: pulled.name };
}

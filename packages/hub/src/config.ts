/**
 * Where things are: the Hub endpoint and token (read as huggingface_hub reads them) and pali's cache folder.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError } from "@pali/core";

export const DEFAULT_ENDPOINT = "https://huggingface.co";

type Env = Record<string, string | undefined>;

/** `HF_ENDPOINT` (a mirror or a private Hub), else huggingface.co; no trailing slash. */
export function hubEndpoint(explicit: string | undefined, env: Env = process.env): string {
  const value = explicit ?? (env.HF_ENDPOINT || DEFAULT_ENDPOINT);
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new InvalidArgumentError(
      `Expected an http(s) URL for the Hub endpoint (HF_ENDPOINT) but received ${JSON.stringify(value)}`,
      {
        cause,
      },
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new InvalidArgumentError(
      `Expected an http(s) URL for the Hub endpoint (HF_ENDPOINT) but received ${JSON.stringify(value)}`,
    );
  return value.replace(/\/+$/, "");
}

function clean(token: string | undefined): string | undefined {
  const t = token?.trim();
  return t ? t : undefined;
}

/**
 * The token huggingface_hub would use: `HF_TOKEN`, then the legacy `HUGGING_FACE_HUB_TOKEN`, then the file
 * `huggingface-cli login` writes (`HF_TOKEN_PATH`, else `$HF_HOME/token`, else `~/.cache/huggingface/token`).
 * `false` means "send none".
 */
export function hubToken(explicit: string | false | undefined, env: Env = process.env): string | undefined {
  if (explicit === false) return undefined;
  if (explicit !== undefined) return clean(explicit);
  const fromEnv = clean(env.HF_TOKEN) ?? clean(env.HUGGING_FACE_HUB_TOKEN);
  if (fromEnv) return fromEnv;
  const home = env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "huggingface");
  const path = env.HF_TOKEN_PATH || join(home, "token");
  try {
    return clean(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * `PALI_CACHE`, else the platform's cache folder: `$XDG_CACHE_HOME/pali` or `~/.cache/pali` on Linux,
 * `~/Library/Caches/pali` on macOS, `%LOCALAPPDATA%\pali\cache` on Windows.
 */
export function cacheDir(explicit?: string, env: Env = process.env, platform: NodeJS.Platform = process.platform): string {
  if (explicit) return explicit;
  if (env.PALI_CACHE) return env.PALI_CACHE;
  if (platform === "darwin") return join(homedir(), "Library", "Caches", "pali");
  if (platform === "win32") return join(env.LOCALAPPDATA || join(homedir(), "AppData", "Local"), "pali", "cache");
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "pali");
}

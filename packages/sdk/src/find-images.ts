/**
 * The images a labeling run covers: files as given, folders searched recursively for image files, and
 * glob patterns (`photos/**\/*.jpg`), sorted within each input and listed once each.
 */
import { readdir, stat } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { expectNonEmptyString, InvalidArgumentError, PaliError } from "@pali/core";
import { glob } from "tinyglobby";

/** File endings a folder search picks up (sharp decodes them); a file named explicitly is taken whatever its name. */
export const imageExtensions = [".png", ".jpg", ".jpeg", ".webp", ".avif", ".gif", ".tif", ".tiff", ".heic", ".heif"];

function isImageName(name: string): boolean {
  const lower = name.toLowerCase();
  return imageExtensions.some((ext) => lower.endsWith(ext));
}

const globChars = /[*?[\]{}]/;

async function walk(dir: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await walk(path, out);
    else if (entry.isFile() && isImageName(entry.name)) out.push(path);
  }
}

/**
 * Expands inputs to image paths, relative ones staying relative to `cwd`. A path that does not exist, and a
 * pattern or folder that matches no image, are argument errors (a typo should not label nothing).
 */
export async function findImages(inputs: readonly string[], cwd = process.cwd()): Promise<string[]> {
  if (!Array.isArray(inputs) || inputs.length === 0)
    throw new InvalidArgumentError("Expected at least one image, folder or glob pattern to label");
  const seen = new Set<string>();
  const out: string[] = [];
  const add = (path: string) => {
    const key = resolve(cwd, path);
    if (seen.has(key)) return;
    seen.add(key);
    out.push(path);
  };
  for (const [i, value] of inputs.entries()) {
    const input = expectNonEmptyString(value, `inputs[${i}]`);
    const info = await stat(resolve(cwd, input)).catch(() => undefined);
    if (info?.isFile()) {
      add(input);
      continue;
    }
    let found: string[] = [];
    try {
      if (info?.isDirectory()) {
        await walk(resolve(cwd, input), found);
        found = found.map((p) => (input.startsWith("/") ? p : relative(cwd, p)));
      } else if (globChars.test(input)) {
        found = (await glob(input, { cwd, onlyFiles: true, absolute: input.startsWith("/"), expandDirectories: false })).sort();
      } else {
        throw new InvalidArgumentError(`No such file or folder: ${input}`);
      }
    } catch (error) {
      if (error instanceof PaliError) throw error;
      throw new PaliError("ERR_IO", `Could not list ${input}: ${(error as Error).message}`, { cause: error });
    }
    if (found.length === 0)
      throw new InvalidArgumentError(
        info ? `No image files (${imageExtensions.join(", ")}) in ${input}` : `No files match ${JSON.stringify(input)}`,
      );
    for (const path of found) add(path);
  }
  return out;
}

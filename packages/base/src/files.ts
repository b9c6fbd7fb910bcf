/** Reading model files: opening with a typed error, and exact reads that turn a short file into a typed error. */
import { type FileHandle, open } from "node:fs/promises";
import { IoError, type PaliError } from "./errors.js";

export async function openForReading(path: string): Promise<FileHandle> {
  try {
    return await open(path, "r");
  } catch (cause) {
    throw new IoError(`Could not open ${path}: ${(cause as Error).message}`, { cause });
  }
}

/** Reads exactly `length` bytes at `position`; `truncated()` makes the error when the file ends first. */
export async function readExactly(
  handle: FileHandle,
  length: number,
  position: number,
  truncated: () => PaliError,
): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) throw truncated();
    filled += bytesRead;
  }
  return buffer;
}

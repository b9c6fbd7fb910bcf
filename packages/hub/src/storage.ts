/**
 * The two file-system operations a download needs that tests must be able to replace: writing a file
 * (to simulate a disk that fills up) and asking how much space is free.
 */
import { open, statfs } from "node:fs/promises";

export interface Sink {
  write(chunk: Uint8Array): Promise<void>;
  /** flushes to disk and closes; safe to call twice */
  close(): Promise<void>;
}

export interface HubFileSystem {
  /** opens `path` for writing, appending to what is there or truncating it */
  openSink(path: string, append: boolean): Promise<Sink>;
  /** bytes available to this user on the disk that holds `dir`, or undefined when unknown */
  freeBytes(dir: string): Promise<number | undefined>;
}

async function openSink(path: string, append: boolean): Promise<Sink> {
  const handle = await open(path, append ? "a" : "w");
  let closed = false;
  return {
    async write(chunk) {
      let offset = 0;
      while (offset < chunk.length) {
        const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
        offset += bytesWritten;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        // A file renamed to its final name must survive a crash right after the rename.
        await handle.datasync();
      } finally {
        await handle.close();
      }
    },
  };
}

async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

export const nodeFileSystem: HubFileSystem = { openSink, freeBytes };

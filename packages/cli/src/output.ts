/** How the CLI talks: human text on a TTY, exactly one JSON document with --json, errors on stderr. */
import { PaliError } from "@pali/core";

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const processIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

/** Reports an error the way the mode asks for and returns the process exit code. */
export function reportError(error: unknown, json: boolean, io: Io): number {
  const pali = error instanceof PaliError ? error : undefined;
  const code = pali?.code ?? "ERR_INTERNAL";
  const message = error instanceof Error ? error.message : String(error);
  if (json) io.stdout(`${JSON.stringify({ error: { code, message } })}\n`);
  io.stderr(`pali: ${message} [${code}]\n`);
  if (!pali && error instanceof Error && error.stack) io.stderr(`${error.stack}\n`);
  return pali?.code === "ERR_INVALID_ARGUMENT" ? 2 : 1;
}

/** What the native core was built from and what it runs on. */

import { expectOneOf } from "@pali/base";
import {
  loadNative,
  type NativeDeviceInfo,
  type NativeGraphStats,
  type NativeLogLevel,
  type NativeVariantInfo,
  nativeVariantInfo,
} from "./native.js";

export interface SystemInfo {
  pali: string;
  llamaCpp: string;
  ggml: string;
  buildMode: "prebuilt" | "source";
  devices: NativeDeviceInfo[];
  /** CPU features the loaded CPU backend uses, e.g. { AVX2: "1", AVX512: "1" } */
  cpuFeatures: Record<string, string>;
  defaultThreads: number;
  /** the addon variant this process runs (which package, which GPU backend, any fallback) */
  variant: NativeVariantInfo;
}

export function systemInfo(): SystemInfo {
  const info = loadNative().systemInfo();
  const cpuFeatures: Record<string, string> = {};
  for (const pair of info.cpuFeatures.split(";")) {
    const [name, value] = pair.split("=");
    if (name) cpuFeatures[name] = value ?? "";
  }
  return {
    pali: info.version,
    llamaCpp: info.llamaCpp,
    ggml: info.ggml,
    buildMode: info.buildMode,
    devices: info.devices,
    cpuFeatures,
    defaultThreads: info.defaultThreads,
    variant: nativeVariantInfo() as NativeVariantInfo,
  };
}

/**
 * Where the last run of each of pali's own ggml graphs (the image encode, the mask decoder) ran: the
 * backend the scheduler gave each node, and the buffers of the weights it read (a GPU run shows its device).
 */
export function graphStats(): NativeGraphStats[] {
  return JSON.parse(loadNative().graphStatsJson()) as NativeGraphStats[];
}

export type LogLevel = "debug" | "info" | "warn" | "error";
const levels: LogLevel[] = ["debug", "info", "warn", "error"];

/**
 * Routes pali's, libllama's and ggml's log lines (at `minLevel` and above) to `logger`; `null`
 * restores the default (errors to stderr; PALI_LOG=debug, info, warn or error in the environment changes the level).
 */
export function setLogger(logger: ((level: LogLevel, text: string) => void) | null, minLevel: LogLevel = "warn"): void {
  expectOneOf(minLevel, "minLevel", levels);
  const native = loadNative();
  if (logger === null) {
    native.setLogCallback(null);
    return;
  }
  native.setLogCallback(
    (level, text) => logger(levels[level - 1] ?? "info", text),
    (levels.indexOf(minLevel) + 1) as NativeLogLevel,
  );
}

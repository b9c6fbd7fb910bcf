/** `pali info [-m FILE.gguf] [--json]`: versions, backends, devices, CPU features, and a model file's metadata. */
import { stat } from "node:fs/promises";
import { InvalidArgumentError, IoError, systemInfo } from "@pali/core";
import { metadataToJson, readGGUF, summarize } from "@pali/gguf";
import { listCachedModels, resolveModel } from "@pali/hub";
import { formatBytes, formatCount, type Io } from "../output.js";

export const infoHelp = `Usage: pali info [-m FILE.gguf] [--json]

Shows pali's version, the llama.cpp/ggml it runs on, the native variant loaded (--gpu picks it), backends and devices, CPU features and default
threads. With -m, also the GGUF file's metadata: architecture, tensors, sizes, quantization types and
paligemma.* keys.

Options:
  -m, --model MODEL  a GGUF file, or the name or repo of a model in pali's cache (pali ls), to describe
      --json         print one JSON document and nothing else
`;

export interface InfoOptions {
  model?: string | undefined;
  json: boolean;
}

async function describeModel(path: string) {
  const file = await readGGUF(path);
  const summary = summarize(file);
  const metadata: Record<string, unknown> = {};
  const paligemma: Record<string, unknown> = {};
  for (const [key, value] of file.metadata) {
    metadata[key] = metadataToJson(value, 8);
    if (key.startsWith("paligemma.")) paligemma[key.slice("paligemma.".length)] = metadataToJson(value);
  }
  return { path, fileSize: file.fileSize, ggufVersion: file.version, ...summary, paligemma, metadata };
}

/** A file as it is; otherwise a cached model's decoder, found by name or repo as the other commands find it (never pulled). */
async function modelFile(input: string): Promise<string> {
  const found = await stat(input).catch(() => undefined);
  if (found?.isFile()) return input;
  if (found?.isDirectory()) return (await resolveModel(input)).model; // a cache folder, or an error naming its model file
  const cached = (await listCachedModels()).find((m) => m.name === input || m.repo === input || m.dir === input);
  if (cached) return cached.model;
  if (/\.gguf$/i.test(input) || /[/\\]/.test(input)) throw new IoError(`${input} does not exist: pass an existing .gguf file`);
  throw new InvalidArgumentError(
    `${input} is neither a file nor a model in pali's cache (pali ls lists them); pass a .gguf file, or pull it first with pali pull ${input}`,
  );
}

export async function info(options: InfoOptions, io: Io): Promise<number> {
  const system = systemInfo();
  const model = options.model === undefined ? undefined : await describeModel(await modelFile(options.model));
  if (options.json) {
    io.stdout(`${JSON.stringify({ ...system, ...(model ? { model } : {}) }, null, 2)}\n`);
    return 0;
  }
  const lines = [
    `pali ${system.pali}`,
    `llama.cpp ${system.llamaCpp}, ggml ${system.ggml} (${system.buildMode})`,
    `native: ${system.variant.variant}${system.variant.gpu ? ` (${system.variant.gpu})` : " (CPU)"}, gpu ${JSON.stringify(system.variant.requested)} asked, from ${system.variant.path}`,
    ...(system.variant.fallback ? [`  ${system.variant.fallback}`] : []),
    `default threads: ${system.defaultThreads}`,
    `CPU features: ${Object.keys(system.cpuFeatures).join(" ") || "(none reported)"}`,
    "devices:",
    ...system.devices.map(
      (d) =>
        `  ${d.name.padEnd(8)} ${d.backend.padEnd(7)} ${d.type.padEnd(5)} ${formatBytes(d.memoryTotal).padStart(10)}  ${d.description}`,
    ),
  ];
  if (model) {
    lines.push(
      "",
      `model: ${model.path}`,
      `  GGUF v${model.ggufVersion}, ${formatBytes(model.fileSize)}`,
      `  architecture: ${model.architecture ?? "(not set)"}${model.name ? `, name: ${model.name}` : ""}`,
      `  tensors: ${model.tensorCount} (${formatBytes(model.tensorBytes)}, ${formatCount(model.parameterCount)} parameters)`,
      `  types: ${Object.entries(model.tensorTypes)
        .map(([t, n]) => `${t}×${n}`)
        .join(", ")}`,
    );
    const pg = Object.entries(model.paligemma);
    if (pg.length > 0) {
      lines.push("  paligemma:");
      for (const [k, v] of pg) lines.push(`    ${k} = ${JSON.stringify(v)}`);
    }
  }
  io.stdout(`${lines.join("\n")}\n`);
  return 0;
}

/** `pali pull NAME|REPO`: a PaliGemma checkpoint from the Hugging Face Hub → verified, converted, cached GGUF files. */
import { type ModelType, mmprojTypes, modelTypes } from "@pali/convert";
import { AbortError, expectInteger, expectOneOf, InvalidArgumentError } from "@pali/core";
import { DEFAULT_PULL_TYPE, type PullOptions, type PullProgress, pullModel } from "@pali/hub";
import { formatBytes, type Io } from "../output.js";
import { createProgress, type Progress, progressMode } from "../progress.js";

export const pullHelp = `Usage: pali pull NAME|REPO [options]

Downloads a PaliGemma checkpoint from the Hugging Face Hub, verifies every file against the size and
SHA-256 the Hub lists, converts and quantizes it, and keeps the two GGUF files in pali's model cache
(PALI_CACHE; default ~/.cache/pali). A model already in the cache comes back at once, offline.

NAME is a name from pali's registry (pali ls --available), such as pg2-3b-mix-448; REPO a Hub repo id
such as google/paligemma2-3b-mix-448 (hf:owner/name and Hub URLs work too).

Options:
  -t, --type TYPE          model weights: ${modelTypes.join(", ")} (default ${DEFAULT_PULL_TYPE})
      --mmproj-type TYPE   image encoder weights: ${mmprojTypes.join(", ")}, or auto (default): q8_0 on
                           x86 CPUs with AVX2, else f16
      --revision REV       branch, tag or commit (default main; PaliGemma 1: the bfloat16 branch)
      --keep-source        keep the downloaded safetensors in the cache after converting
      --threads N          quantization threads (default: physical cores)
      --json               print {"model": PATH, "mmproj": PATH, "cached": BOOL} and nothing else

Google's PaliGemma repos are gated: open the model's page on huggingface.co logged in and accept the
licence, create a read token at https://huggingface.co/settings/tokens, then export HF_TOKEN=hf_...
(huggingface-cli login works too). HF_ENDPOINT selects a mirror. Ctrl-C stops a pull; running the same
pull again resumes the download where it stopped.
`;

export interface PullCliOptions {
  name: string | undefined;
  type: string | undefined;
  mmprojType: string | undefined;
  revision: string | undefined;
  threads: string | undefined;
  keepSource: boolean;
  json: boolean;
}

/** Turns pull events into progress bars: bytes, rate and ETA while downloading, tensors while converting. */
function progressReporter(json: boolean, io: Io): { onProgress: (p: PullProgress) => void; finish: () => void } {
  const mode = progressMode(json);
  let bar: Progress | undefined;
  let phase = "";
  let started = 0;
  const switchTo = (next: string) => {
    if (phase === next) return;
    bar?.done();
    phase = next;
    bar = createProgress(mode, io.stderr);
    started = Date.now();
  };
  return {
    onProgress(p) {
      if (p.phase === "wait") {
        if (mode !== "none") io.stderr(`waiting for another pull of this model (pid ${p.pid}) to finish...\n`);
      } else if (p.phase === "download") {
        switchTo("download");
        const seconds = Math.max(0.001, (Date.now() - started) / 1000);
        const rate = p.transferred / seconds;
        const eta = rate > 0 ? (p.total - p.done) / rate : undefined;
        bar?.update(
          p.total > 0 ? p.done / p.total : 1,
          `${formatBytes(p.done)}/${formatBytes(p.total)} ${formatBytes(rate)}/s`,
          eta,
        );
      } else if (p.phase === "convert") {
        switchTo("convert");
        bar?.update(p.done / p.total, `converting ${p.file} ${p.tensor}`);
      } else {
        switchTo("finalize");
      }
    },
    finish() {
      bar?.done();
      bar = undefined;
    },
  };
}

/** `hub` passes endpoint, token, cache folder or registry through (tests point them at a local server). */
export async function pull(options: PullCliOptions, io: Io, hub: PullOptions = {}): Promise<number> {
  if (!options.name)
    throw new InvalidArgumentError("pali pull needs a model: pali pull NAME|REPO (run `pali ls --available` for the names)");
  const threads = options.threads === undefined ? undefined : expectInteger(Number(options.threads), "--threads", 0, 1024);
  const controller = new AbortController();
  const stop = () => controller.abort(new AbortError("Interrupted"));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const reporter = progressReporter(options.json, io);
  try {
    const result = await pullModel(options.name, {
      ...hub,
      ...(options.type !== undefined ? { type: expectOneOf(options.type, "--type", modelTypes) as ModelType } : {}),
      ...(options.mmprojType !== undefined
        ? { mmprojType: expectOneOf(options.mmprojType, "--mmproj-type", [...mmprojTypes, "auto"] as const) }
        : {}),
      ...(options.revision !== undefined ? { revision: options.revision } : {}),
      ...(threads !== undefined ? { threads } : {}),
      keepSource: options.keepSource,
      signal: controller.signal,
      onProgress: reporter.onProgress,
    });
    reporter.finish();
    if (options.json) io.stdout(`${JSON.stringify({ model: result.model, mmproj: result.mmproj, cached: result.cached })}\n`);
    else
      io.stdout(
        `${result.cached ? "cached" : "pulled"} ${result.name} (${result.type}) from ${result.repo}@${result.revision.slice(0, 12)}\n` +
          `model:  ${result.model}\nmmproj: ${result.mmproj}\n`,
      );
    return 0;
  } finally {
    reporter.finish();
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

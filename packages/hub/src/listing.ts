/**
 * The file listing of one revision of a repo: `GET /api/models/{repo}/revision/{rev}?blobs=true`, which gives
 * the commit it resolved to and, per file, its size, git blob id and (for LFS files) the SHA-256 of the content.
 */
import { IoError, UnsupportedModelError } from "@pali/core";
import { type HubContext, hubError, hubFetch } from "./http.js";

export interface RemoteFile {
  path: string;
  size: number;
  /** LFS files: SHA-256 of the content, as the Hub reports it */
  sha256?: string;
  /** git blob id (SHA-1 of "blob <size>\0" + content), for files stored in git itself */
  blobId?: string;
}

export interface RepoListing {
  repo: string;
  /** the revision asked for (a branch, tag or commit) */
  revision: string;
  /** the commit it resolved to: every file is downloaded at this commit */
  commit: string;
  gated: false | "auto" | "manual" | undefined;
  /** config.model_type as the Hub parsed it, when it says */
  modelType: string | undefined;
  files: RemoteFile[];
}

function malformed(ctx: HubContext, what: string): IoError {
  return new IoError(
    `The Hub's file listing of ${ctx.repo}@${ctx.revision} is not what pali expects (${what}). Check HF_ENDPOINT points at a Hugging Face Hub.`,
  );
}

export function listingUrl(ctx: HubContext): string {
  return `${ctx.endpoint}/api/models/${ctx.repo}/revision/${encodeURIComponent(ctx.revision)}?blobs=true`;
}

export async function listRepo(ctx: HubContext): Promise<RepoListing> {
  const res = await hubFetch(listingUrl(ctx), ctx);
  if (!res.response.ok) throw await hubError(res, ctx);
  let json: Record<string, unknown>;
  try {
    json = (await res.response.json()) as Record<string, unknown>;
  } catch (cause) {
    throw malformed(ctx, `not JSON: ${(cause as Error).message}`);
  }
  const commit = json.sha;
  if (typeof commit !== "string" || !/^[0-9a-f]{40}$/.test(commit)) throw malformed(ctx, "no commit sha");
  if (!Array.isArray(json.siblings)) throw malformed(ctx, "no siblings");
  const files: RemoteFile[] = [];
  for (const s of json.siblings as Record<string, unknown>[]) {
    if (typeof s?.rfilename !== "string") throw malformed(ctx, "a sibling without rfilename");
    const lfs = s.lfs as { sha256?: unknown; size?: unknown } | undefined;
    const size = typeof lfs?.size === "number" ? lfs.size : s.size;
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0)
      throw malformed(ctx, `no size for ${s.rfilename} (the listing was asked with blobs=true)`);
    const file: RemoteFile = { path: s.rfilename, size };
    if (lfs) {
      if (typeof lfs.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(lfs.sha256))
        throw malformed(ctx, `no sha256 for ${s.rfilename}`);
      file.sha256 = lfs.sha256;
    } else if (typeof s.blobId === "string" && /^[0-9a-f]{40}$/.test(s.blobId)) {
      file.blobId = s.blobId;
    }
    files.push(file);
  }
  const gated = json.gated === "auto" || json.gated === "manual" || json.gated === false ? json.gated : undefined;
  const config = json.config as { model_type?: unknown } | undefined;
  const modelType = typeof config?.model_type === "string" ? config.model_type : undefined;
  return { repo: ctx.repo, revision: ctx.revision, commit, gated, modelType, files };
}

/** Files the converter reads besides the weights. */
const SMALL_FILES = [
  "config.json",
  "model.safetensors.index.json",
  "tokenizer.model",
  "tokenizer.json",
  "tokenizer_config.json",
  "added_tokens.json",
];

/**
 * What to download of a listing, checked before any byte is fetched: a transformers PaliGemma checkpoint has
 * config.json, safetensors weights and tokenizer.model at the top level.
 */
export function checkpointFiles(listing: RepoListing): { small: RemoteFile[]; weights: RemoteFile[] } {
  const where = `${listing.repo}@${listing.revision}`;
  if (listing.modelType !== undefined && listing.modelType !== "paligemma")
    throw new UnsupportedModelError(
      `${listing.repo} is a ${JSON.stringify(listing.modelType)} model, not PaliGemma. pali pulls PaliGemma 1 and 2 checkpoints: run \`pali ls --available\` for the official ones.`,
    );
  const byPath = new Map(listing.files.map((f) => [f.path, f]));
  if (!byPath.has("config.json"))
    throw new UnsupportedModelError(
      `${where} has no config.json, so it is not a transformers checkpoint (big_vision "-jax" and "-keras" repos are not supported): pull the transformers repo of the same model.`,
    );
  const weights = listing.files.filter((f) => !f.path.includes("/") && f.path.endsWith(".safetensors"));
  if (weights.length === 0)
    throw new UnsupportedModelError(
      `${where} has no .safetensors weights at its top level; pali converts transformers checkpoints saved as safetensors.`,
    );
  if (!byPath.has("tokenizer.model"))
    throw new UnsupportedModelError(
      `${where} has no tokenizer.model; pali needs the SentencePiece model that PaliGemma checkpoints ship.`,
    );
  const small = SMALL_FILES.map((p) => byPath.get(p)).filter((f): f is RemoteFile => f !== undefined);
  return { small, weights };
}

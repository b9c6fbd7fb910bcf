/**
 * HTTP to the Hub: redirects followed by hand (so the token only goes to the Hub's own origin, as
 * huggingface_hub does, and never to the CDN), and every failure status turned into a typed error that says
 * what to do.
 */
import { AbortError, InvalidArgumentError, IoError, type PaliError } from "@pali/core";
import { errnoCode, HubAuthError } from "./errors.js";

export const MAX_REDIRECTS = 10;

export interface HubContext {
  endpoint: string;
  token: string | undefined;
  repo: string;
  revision: string;
  signal: AbortSignal | undefined;
  /** user agent, kept short */
  userAgent?: string;
}

export interface HubResponse {
  response: Response;
  /** where the body finally came from */
  url: string;
  /** headers of the last response served by the Hub itself (X-Linked-Etag, X-Linked-Size, X-Repo-Commit) */
  hubHeaders: Headers;
}

function origin(url: string): string {
  return new URL(url).origin;
}

/** The error a thrown fetch becomes: an abort, or a network failure that names the host. */
export function networkError(error: unknown, url: string, signal: AbortSignal | undefined): PaliError {
  if (signal?.aborted) return new AbortError("The download was aborted; pull again to resume it", { cause: signal.reason });
  let root = error as { cause?: unknown; message?: string } | undefined;
  while (root?.cause) root = root.cause as typeof root;
  const code = errnoCode(error) ?? root?.message ?? String(error);
  return new IoError(
    `Could not reach ${origin(url)} (${code}). Check the network connection (and HF_ENDPOINT if you set one), then pull again: finished files are kept and a partial download resumes.`,
    { cause: error },
  );
}

/**
 * GET/HEAD `url`, following up to MAX_REDIRECTS redirects. Authorization is sent only to the endpoint's
 * origin: the Hub redirects LFS files to a CDN with a signed URL that must not see the token.
 */
export async function hubFetch(
  url: string,
  ctx: HubContext,
  init: { method?: "GET" | "HEAD"; headers?: Record<string, string> } = {},
): Promise<HubResponse> {
  const hubOrigin = origin(ctx.endpoint);
  let current = url;
  let hubHeaders = new Headers();
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = {
      "user-agent": ctx.userAgent ?? "pali-hub/0.1.0",
      // The real size of every file, never a gzip of it.
      "accept-encoding": "identity",
      ...init.headers,
    };
    if (ctx.token && origin(current) === hubOrigin) headers.authorization = `Bearer ${ctx.token}`;
    let response: Response;
    try {
      response = await fetch(current, {
        method: init.method ?? "GET",
        headers,
        redirect: "manual",
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
    } catch (error) {
      throw networkError(error, current, ctx.signal);
    }
    if (origin(current) === hubOrigin) hubHeaders = response.headers;
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel().catch(() => {});
      if (hop >= MAX_REDIRECTS)
        throw new IoError(`The Hub redirected ${url} more than ${MAX_REDIRECTS} times; try again later or check HF_ENDPOINT`);
      current = new URL(location, current).toString();
      continue;
    }
    return { response, url: current, hubHeaders };
  }
}

/** What a failed Hub response means for the user, with the fix. `file` is absent for the listing call. */
export async function hubError(res: HubResponse, ctx: HubContext, file?: string): Promise<PaliError> {
  const { response } = res;
  const status = response.status;
  const code = response.headers.get("x-error-code") ?? "";
  const serverMessage = response.headers.get("x-error-message") ?? "";
  await response.body?.cancel().catch(() => {});
  const page = `${ctx.endpoint}/${ctx.repo}`;
  const what = file ? `${file} of ${ctx.repo}` : ctx.repo;
  const login =
    `create a read token at ${ctx.endpoint}/settings/tokens and set it as HF_TOKEN (export HF_TOKEN=hf_...), ` +
    "or run `huggingface-cli login`; then pull again";

  if (status === 401 && /invalid credentials/i.test(serverMessage))
    return new HubAuthError(
      `The Hugging Face token was rejected as invalid (HTTP 401): create a new read token at ${ctx.endpoint}/settings/tokens, set HF_TOKEN to it and pull again.`,
    );
  if (code === "GatedRepo" || ((status === 401 || status === 403) && code === "")) {
    if (!ctx.token)
      return new HubAuthError(
        `${ctx.repo} is gated: Google's licence must be accepted before it can be downloaded (HTTP ${status}). ` +
          `Open ${page} while logged in to Hugging Face and accept the licence, then ${login}.`,
      );
    return new HubAuthError(
      `Your Hugging Face token has no access to ${ctx.repo} (HTTP ${status}). Open ${page} while logged in with the ` +
        "account the token belongs to and accept the licence (requests are granted immediately), or set HF_TOKEN to a read " +
        "token of an account that has accepted it.",
    );
  }
  if (code === "RepoNotFound" || (!file && status === 404 && code !== "RevisionNotFound"))
    return new InvalidArgumentError(
      `${ctx.repo} was not found on ${ctx.endpoint} (HTTP ${status})${ctx.token ? "" : ", or it is private and needs a token (HF_TOKEN)"}. ` +
        "Check the repo id, or run `pali ls --available` for the models pali knows.",
    );
  if (code === "RevisionNotFound")
    return new InvalidArgumentError(
      `${ctx.repo} has no revision ${JSON.stringify(ctx.revision)} (HTTP ${status}). Pass an existing branch, tag or commit with --revision, or leave it out.`,
    );
  if (status === 404 || code === "EntryNotFound")
    return new IoError(`The Hub answered 404 for ${what} at ${ctx.revision}: the repo changed while pulling. Pull again.`);
  if (status === 429)
    return new IoError(
      `The Hub is rate-limiting downloads (HTTP 429) for ${what}. Wait a few minutes and pull again; it resumes.`,
    );
  if (status >= 500)
    return new IoError(`The Hub failed with HTTP ${status} for ${what}. Try again later; the pull resumes where it stopped.`);
  return new IoError(
    `The Hub answered HTTP ${status}${serverMessage ? ` (${serverMessage})` : ""} for ${what}. Check HF_ENDPOINT and the repo id.`,
  );
}

/** Statuses worth retrying without the user: overloaded or briefly failing servers. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

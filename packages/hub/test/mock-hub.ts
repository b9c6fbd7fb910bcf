/**
 * A Hugging Face Hub on 127.0.0.1 for tests: the endpoints pali uses, answering as the Hub does (see
 * huggingface_hub's file_download.py and utils/_http.py): the revision listing with blobs, `resolve` with a
 * 302 to a CDN on another origin for LFS files (X-Linked-Etag / X-Linked-Size / X-Repo-Commit), Range
 * requests on the CDN, 401/403 with X-Error-Code for gated repos, 404s. Faults are switched on per test.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export const GOOD_TOKEN = "hf_accepted_licence";
export const NO_ACCESS_TOKEN = "hf_valid_but_no_access";

export interface MockRepo {
  dir: string;
  gated?: boolean;
  /** listing includes config.model_type (the real Hub does); false leaves it out */
  listingConfig?: boolean;
  /** other names the revision can be asked by (branches) */
  branches?: string[];
  /** resolve answers a relative 307 to this repo first, as the Hub does for a renamed repo */
  renamedTo?: string;
}

interface ServedFile {
  path: string;
  bytes: Buffer;
  sha256: string;
  blobId: string;
  lfs: boolean;
}

export interface LoggedRequest {
  server: "hub" | "cdn";
  method: string;
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

function commitHash(repo: string): string {
  return createHash("sha1").update(`commit of ${repo}`).digest("hex");
}

function isLfs(path: string): boolean {
  return path.endsWith(".safetensors") || path === "tokenizer.model" || path === "tokenizer.json";
}

export class MockHub {
  readonly requests: LoggedRequest[] = [];
  /** file path → bytes the CDN sends before closing the connection, once */
  readonly dropOnce = new Map<string, number>();
  /** file paths whose listed SHA-256 is wrong (the bytes served are right) */
  readonly wrongSha = new Set<string>();
  /** serve CDN bodies in 16 KiB pieces with a pause of `slowDelayMs` between them */
  slow = false;
  slowDelayMs = 2;
  /** the CDN answers 200 with the whole file even when asked for a range */
  ignoreRange = false;
  /** file path → HTTP status that `resolve` answers once (503, 429) */
  readonly failOnce = new Map<string, number>();
  endpoint = "";
  private cdnOrigin = "";
  private hub: Server;
  private cdn: Server;
  private files = new Map<string, ServedFile[]>();
  private blobs = new Map<string, Buffer>();

  constructor(readonly repos: Record<string, MockRepo>) {
    for (const [repo, r] of Object.entries(repos)) {
      const served: ServedFile[] = [];
      for (const path of readdirSync(r.dir).sort()) {
        const bytes = readFileSync(join(r.dir, path));
        const sha256 = createHash("sha256").update(bytes).digest("hex");
        const blobId = createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
        served.push({ path, bytes, sha256, blobId, lfs: isLfs(path) });
        this.blobs.set(sha256, bytes);
      }
      const readme = Buffer.from(`# ${repo}\n`);
      served.push({
        path: "README.md",
        bytes: readme,
        sha256: createHash("sha256").update(readme).digest("hex"),
        blobId: createHash("sha1").update(`blob ${readme.length}\0`).update(readme).digest("hex"),
        lfs: false,
      });
      this.files.set(repo, served);
    }
    this.hub = createServer((req, res) => this.serveHub(req, res));
    this.cdn = createServer((req, res) => this.serveCdn(req, res));
  }

  async start(): Promise<this> {
    const listen = (s: Server) =>
      new Promise<number>((resolve) => s.listen(0, "127.0.0.1", () => resolve((s.address() as AddressInfo).port)));
    this.endpoint = `http://127.0.0.1:${await listen(this.hub)}`;
    this.cdnOrigin = `http://127.0.0.1:${await listen(this.cdn)}`;
    return this;
  }

  async close(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  }

  /** A renamed repo keeps its history: its commits are those of the repo it became. */
  commit(repo: string): string {
    return commitHash(this.repos[repo]?.renamedTo ?? repo);
  }

  private log(server: "hub" | "cdn", req: IncomingMessage): void {
    this.requests.push({
      server,
      method: req.method ?? "GET",
      path: req.url ?? "",
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
  }

  private listedSha(file: ServedFile): string {
    return this.wrongSha.has(file.path) ? "0".repeat(64) : file.sha256;
  }

  private serveHub(req: IncomingMessage, res: ServerResponse): void {
    this.log("hub", req);
    const url = new URL(req.url ?? "/", this.endpoint);
    const listing = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (listing?.[1] && listing[2])
      this.serveListing(res, listing[1], decodeURIComponent(listing[2]), url, req.headers.authorization);
    else if (resolve?.[1] && resolve[2] && resolve[3])
      this.serveResolve(req, res, resolve[1], resolve[2], decodeURIComponent(resolve[3]));
    else res.writeHead(404).end();
  }

  private revisionOk(repo: string, revision: string): boolean {
    const r = this.repos[repo];
    return revision === "main" || revision === this.commit(repo) || (r?.branches ?? []).includes(revision);
  }

  private serveListing(res: ServerResponse, repo: string, revision: string, url: URL, authorization: string | undefined): void {
    const r = this.repos[repo];
    const files = this.files.get(repo);
    if (!r || !files) {
      // Without a token the Hub does not say whether a repo exists (401); with one, a missing repo is a 404.
      const status = authorization ? 404 : 401;
      res.writeHead(status, { "x-error-code": "RepoNotFound", "x-error-message": "Repository not found" }).end();
      return;
    }
    if (!this.revisionOk(repo, revision)) {
      res.writeHead(404, { "x-error-code": "RevisionNotFound", "x-error-message": "Invalid rev id" }).end();
      return;
    }
    const blobs = url.searchParams.get("blobs") === "true";
    const config = JSON.parse(files.find((f) => f.path === "config.json")?.bytes.toString() ?? "{}") as { model_type?: string };
    const body = {
      id: repo,
      sha: this.commit(repo),
      gated: r.gated ? "manual" : false,
      ...(r.listingConfig === false ? {} : { config: { model_type: config.model_type } }),
      siblings: files.map((f) =>
        blobs
          ? {
              rfilename: f.path,
              size: f.bytes.length,
              blobId: f.blobId,
              ...(f.lfs ? { lfs: { size: f.bytes.length, sha256: this.listedSha(f), pointerSize: 134 } } : {}),
            }
          : { rfilename: f.path },
      ),
    };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  }

  private serveResolve(req: IncomingMessage, res: ServerResponse, repo: string, revision: string, path: string): void {
    const r = this.repos[repo];
    if (r?.renamedTo) {
      res.writeHead(307, { location: `/${r.renamedTo}/resolve/${revision}/${encodeURIComponent(path)}` }).end();
      return;
    }
    const files = this.files.get(repo);
    if (!r || !files) {
      res.writeHead(401, { "x-error-code": "RepoNotFound" }).end();
      return;
    }
    if (r.gated) {
      const auth = req.headers.authorization;
      if (!auth) {
        res
          .writeHead(401, {
            "x-error-code": "GatedRepo",
            "x-error-message": `Access to model ${repo} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
          })
          .end();
        return;
      }
      if (auth !== `Bearer ${GOOD_TOKEN}` && auth !== `Bearer ${NO_ACCESS_TOKEN}`) {
        res.writeHead(401, { "x-error-message": "Invalid credentials in Authorization header" }).end();
        return;
      }
      if (auth === `Bearer ${NO_ACCESS_TOKEN}`) {
        res
          .writeHead(403, {
            "x-error-code": "GatedRepo",
            "x-error-message": `Access to model ${repo} is restricted and you are not in the authorized list.`,
          })
          .end();
        return;
      }
    }
    if (!this.revisionOk(repo, revision)) {
      res.writeHead(404, { "x-error-code": "RevisionNotFound" }).end();
      return;
    }
    const status = this.failOnce.get(path);
    if (status !== undefined) {
      this.failOnce.delete(path);
      res.writeHead(status).end();
      return;
    }
    const file = files.find((f) => f.path === path);
    if (!file) {
      res.writeHead(404, { "x-error-code": "EntryNotFound", "x-error-message": "Entry not found" }).end();
      return;
    }
    const common = { "x-repo-commit": this.commit(repo) };
    if (file.lfs) {
      res
        .writeHead(302, {
          ...common,
          location: `${this.cdnOrigin}/repos/${file.sha256}?X-Amz-Signature=abc&name=${encodeURIComponent(path)}`,
          "x-linked-etag": `"${this.listedSha(file)}"`,
          "x-linked-size": String(file.bytes.length),
          etag: `"${file.blobId}"`,
        })
        .end();
      return;
    }
    res.writeHead(200, { ...common, etag: `"${file.blobId}"`, "content-length": file.bytes.length }).end(file.bytes);
  }

  private serveCdn(req: IncomingMessage, res: ServerResponse): void {
    this.log("cdn", req);
    const url = new URL(req.url ?? "/", this.cdnOrigin);
    const m = /^\/repos\/([0-9a-f]{64})$/.exec(url.pathname);
    const bytes = m?.[1] ? this.blobs.get(m[1]) : undefined;
    const name = url.searchParams.get("name") ?? "";
    if (!bytes) {
      res.writeHead(404).end();
      return;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (range?.[1] !== undefined && !this.ignoreRange) {
      start = Number(range[1]);
      if (start >= bytes.length) {
        res.writeHead(416, { "content-range": `bytes */${bytes.length}` }).end();
        return;
      }
      res.writeHead(206, {
        "content-length": bytes.length - start,
        "content-range": `bytes ${start}-${bytes.length - 1}/${bytes.length}`,
      });
    } else {
      res.writeHead(200, { "content-length": bytes.length, "accept-ranges": "bytes" });
    }
    const body = bytes.subarray(start);
    const drop = this.dropOnce.get(name);
    if (drop !== undefined && start < drop) {
      // Send up to the drop point, then close the connection cleanly (FIN): the client sees a short body.
      this.dropOnce.delete(name);
      res.write(body.subarray(0, drop - start), () => res.socket?.end());
      return;
    }
    if (!this.slow) {
      res.end(body);
      return;
    }
    let offset = 0;
    const pump = () => {
      if (res.destroyed) return;
      if (offset >= body.length) return void res.end();
      const piece = body.subarray(offset, offset + 16384);
      offset += piece.length;
      res.write(piece, () => setTimeout(pump, this.slowDelayMs));
    };
    pump();
  }
}

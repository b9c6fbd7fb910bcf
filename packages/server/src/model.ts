/** The one model a server serves: loading (the server already listens), ready, or failed to load. */
import { basename } from "node:path";
import { PaliGemma } from "@pali/sdk";
import { ServerError, ServerErrorCode, toErrorResponse } from "./errors.js";
import type { Log } from "./log.js";
import type { ModelSource } from "./options.js";

type State =
  | { kind: "loading" }
  | { kind: "ready"; pg: PaliGemma; name: string }
  | { kind: "failed"; code: string; message: string };

export class ModelSlot {
  #state: State = { kind: "loading" };
  #abort = new AbortController();
  /** settles when loading has ended, either way */
  readonly settled: Promise<void>;
  readonly #loaded: Promise<PaliGemma>;

  constructor(source: ModelSource, name: string | undefined, log: Log) {
    this.#loaded = (async () => (source instanceof PaliGemma ? source : await source(this.#abort.signal)))();
    this.settled = this.#loaded.then(
      (pg) => {
        const modelName = name ?? basename(pg.info.model).replace(/\.gguf$/i, "");
        this.#state = { kind: "ready", pg, name: modelName };
        log("info", `model ${modelName} loaded (${pg.info.device}, parallel ${pg.info.parallel})`);
      },
      (error: unknown) => {
        const { code, message } = toErrorResponse(error);
        this.#state = { kind: "failed", code, message };
        if (!this.#abort.signal.aborted) log("error", `could not load the model: ${message} [${code}]`);
      },
    );
  }

  get state(): State {
    return this.#state;
  }

  /** The model, or 503: still loading, or the load error. */
  get(): { pg: PaliGemma; name: string } {
    const s = this.#state;
    if (s.kind === "ready") return s;
    if (s.kind === "loading")
      throw new ServerError(503, ServerErrorCode.ModelLoading, "The model is still loading; retry in a moment", {
        headers: { "retry-after": "1" },
      });
    throw new ServerError(503, s.code, `The model could not be loaded: ${s.message}`);
  }

  /** The loaded model, or the load error. */
  ready(): Promise<PaliGemma> {
    return this.#loaded;
  }

  /** Stops a load in progress and frees the model. */
  async dispose(): Promise<void> {
    this.#abort.abort(new ServerError(503, ServerErrorCode.ShuttingDown, "The server is shutting down"));
    await this.settled;
    const s = this.#state;
    if (s.kind === "ready") await s.pg.dispose();
  }
}

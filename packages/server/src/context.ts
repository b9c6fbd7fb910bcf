/** What the route modules share: options, the model, admission, the log. */
import type { PaliGemma } from "@pali/sdk";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ImagePolicy } from "./images.js";
import type { Admission, Ticket } from "./limits.js";
import type { Log } from "./log.js";
import type { ModelSlot } from "./model.js";
import type { ResolvedOptions } from "./options.js";

export interface ServerContext {
  options: ResolvedOptions;
  model: ModelSlot;
  admission: Admission;
  images: ImagePolicy;
  log: Log;
}

/** The model (503 while it loads) and a place in line for this request (429 when the line is full). */
export function admit(
  ctx: ServerContext,
  request: FastifyRequest,
  reply: FastifyReply,
): { pg: PaliGemma; name: string; ticket: Ticket } {
  const { pg, name } = ctx.model.get();
  return { pg, name, ticket: ctx.admission.enter(request, reply, pg.info.parallel) };
}

/** OpenAI's usage block; prompt tokens count the image tokens too. */
export function usage(promptTokens: number, completionTokens: number) {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

/** What the decoder reads before the answer: the image tokens, <bos>, and the prompt with its "\n". */
export function promptTokens(pg: PaliGemma, prompt: string): number {
  return pg.info.imageTokens + 1 + pg.tokenizer.encode(`${prompt}\n`, { parseSpecial: true }).length;
}

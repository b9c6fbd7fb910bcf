/**
 * OpenAI's chat completions and models, so that OpenAI clients work unchanged: the image is the one
 * image_url part of the messages, the PaliGemma prompt is the text of the last user message.
 */
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { InvalidArgumentError } from "@pali/core";
import type { FinishReason, GenerateRequest, GenerateResult, StreamChunk } from "@pali/sdk";
import type { FastifyInstance } from "fastify";
import { admit, promptTokens, type ServerContext, usage } from "./context.js";
import { toErrorResponse } from "./errors.js";
import { decodeUpload, imageBytes } from "./images.js";
import { explainAbort, stateOf } from "./limits.js";

const nullable = (schema: object) => ({ anyOf: [schema, { type: "null" }] });

const textPart = {
  type: "object",
  required: ["type", "text"],
  properties: { type: { const: "text" }, text: { type: "string" } },
};
const imagePart = {
  type: "object",
  required: ["type", "image_url"],
  properties: {
    type: { const: "image_url" },
    image_url: {
      type: "object",
      required: ["url"],
      properties: { url: { type: "string", minLength: 1 }, detail: { type: "string" } },
    },
  },
};
const maxTokens = nullable({ type: "integer", minimum: 1, maximum: 65536 });

const chatSchema = {
  body: {
    type: "object",
    required: ["messages"],
    properties: {
      model: { type: "string" },
      messages: {
        type: "array",
        minItems: 1,
        maxItems: 256,
        items: {
          type: "object",
          required: ["role"],
          properties: {
            role: { enum: ["system", "developer", "user", "assistant", "tool"] },
            content: {
              anyOf: [{ type: "string" }, { type: "array", items: { anyOf: [textPart, imagePart] } }, { type: "null" }],
            },
            name: { type: "string" },
          },
        },
      },
      max_tokens: maxTokens,
      max_completion_tokens: maxTokens,
      temperature: nullable({ type: "number", minimum: 0, maximum: 100 }),
      top_p: nullable({ type: "number", minimum: 0, maximum: 1 }),
      seed: nullable({ type: "integer", minimum: 0, maximum: 0xffffffff }),
      stop: {
        anyOf: [
          { type: "string", minLength: 1 },
          { type: "array", maxItems: 16, items: { type: "string", minLength: 1 } },
          { type: "null" },
        ],
      },
      stream: nullable({ type: "boolean" }),
      stream_options: nullable({ type: "object", properties: { include_usage: { type: "boolean" } } }),
      n: nullable({ type: "integer", minimum: 1, maximum: 1 }),
    },
  },
};

type Part = { type: "text"; text: string } | { type: "image_url"; image_url: { url: string } };
interface ChatBody {
  model?: string;
  messages: { role: string; content?: string | Part[] | null }[];
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
}

/** The one image of the conversation and the text of the last user message. */
function imageAndPrompt(messages: ChatBody["messages"]): { url: string; prompt: string } {
  const urls = messages.flatMap((m) =>
    Array.isArray(m.content) ? m.content.flatMap((p) => (p.type === "image_url" ? [p.image_url.url] : [])) : [],
  );
  if (urls.length !== 1)
    throw new InvalidArgumentError(
      urls.length === 0
        ? 'Expected an image in the messages: a content part { "type": "image_url", "image_url": { "url": "data:image/png;base64,..." } }'
        : `PaliGemma answers about one image, but the messages have ${urls.length}`,
    );
  const last = messages.findLast((m) => m.role === "user");
  const content = last?.content ?? "";
  const prompt = (
    typeof content === "string" ? content : content.flatMap((p) => (p.type === "text" ? [p.text] : [])).join(" ")
  ).trim();
  if (prompt === "")
    throw new InvalidArgumentError(
      'Expected the PaliGemma prompt ("caption en", "answer en what is this?", "detect cat ; dog") as the text of the last user message',
    );
  return { url: urls[0] as string, prompt };
}

function finishReason(reason: FinishReason): "stop" | "length" {
  return reason === "length" ? "length" : "stop";
}

const sse = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;

export function registerOpenAI(app: FastifyInstance, ctx: ServerContext): void {
  const modelEntry = (id: string) => ({ id, object: "model", created: 0, owned_by: "pali" });

  // Loaded LoRA adapters are models of their own, as OpenAI-compatible servers list them: a request naming one
  // gets that adapter alone; any other name gets the model as loaded (every adapter it was loaded with).
  const adapterNames = () => ctx.model.get().pg.info.adapters.map((a) => a.name);
  app.get("/v1/models", async () => ({
    object: "list",
    data: [ctx.options.modelName ?? ctx.model.get().name, ...adapterNames()].map(modelEntry),
  }));

  app.post<{ Body: ChatBody }>("/v1/chat/completions", { schema: chatSchema }, async (request, reply) => {
    const body = request.body;
    const { url, prompt } = imageAndPrompt(body.messages);
    const { pg, name, ticket } = admit(ctx, request, reply);
    const { signal } = ticket;
    const image = await decodeUpload(await imageBytes(url, ctx.images, signal, "image_url.url"), ctx.images.pixelLimit, pg);
    const stop = body.stop == null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop;
    const sampling = {
      ...(body.temperature == null ? {} : { temperature: body.temperature }),
      ...(body.top_p == null ? {} : { topP: body.top_p }),
      ...(body.seed == null ? {} : { seed: body.seed }),
    };
    const limit = body.max_completion_tokens ?? body.max_tokens;
    const adapter =
      body.model !== undefined && pg.info.adapters.some((a) => a.name === body.model) ? { adapters: [body.model] } : {};
    const generate: GenerateRequest = {
      image,
      prompt,
      sampling,
      stop,
      signal,
      ...adapter,
      ...(limit == null ? {} : { maxTokens: limit }),
    };
    const prefix = promptTokens(pg, prompt);
    const state = stateOf(request);
    const id = `chatcmpl-${randomUUID().replaceAll("-", "")}`;
    const created = Math.floor(Date.now() / 1000);

    if (!body.stream) {
      const result = await pg.generate(generate);
      state.completionTokens = result.tokens.length;
      return {
        id,
        object: "chat.completion",
        created,
        model: name,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: result.text },
            logprobs: null,
            finish_reason: finishReason(result.finishReason),
          },
        ],
        usage: usage(prefix, result.tokens.length),
        timings: result.timings,
      };
    }

    // The first token comes before the headers, so that a request the model refuses still gets its status.
    const tokens = pg.stream(generate);
    const first = await tokens.next();
    const includeUsage = body.stream_options?.include_usage === true;
    const chunk = (choices: unknown[], extra: object = includeUsage ? { usage: null } : {}) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model: name,
      choices,
      ...extra,
    });
    const delta = (d: object, finish: string | null = null) => ({ index: 0, delta: d, logprobs: null, finish_reason: finish });
    async function* events(): AsyncGenerator<string> {
      yield sse(chunk([delta({ role: "assistant", content: "" })]));
      let count = 0;
      let result: GenerateResult;
      try {
        let next: IteratorResult<StreamChunk, GenerateResult> = first;
        for (; !next.done; next = await tokens.next()) {
          state.completionTokens = ++count;
          if (next.value.text !== "") yield sse(chunk([delta({ content: next.value.text })]));
        }
        result = next.value;
      } catch (error) {
        const e = toErrorResponse(explainAbort(error, signal));
        state.errorCode = e.code;
        yield sse({ error: { code: e.code, message: e.message } });
        return;
      }
      state.completionTokens = result.tokens.length;
      yield sse(
        chunk([delta({}, finishReason(result.finishReason))], {
          ...(includeUsage ? { usage: null } : {}),
          timings: result.timings,
        }),
      );
      if (includeUsage) yield sse(chunk([], { usage: usage(prefix, result.tokens.length) }));
      yield "data: [DONE]\n\n";
    }
    return reply
      .header("content-type", "text/event-stream; charset=utf-8")
      .header("cache-control", "no-cache")
      .header("x-accel-buffering", "no")
      .send(Readable.from(events()));
  });
}

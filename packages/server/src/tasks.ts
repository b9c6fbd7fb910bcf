/**
 * PaliGemma's tasks as endpoints, answering with the SDK's JSON-safe labeling records (the same shapes
 * as `pali label`), plus timings and token usage. Images come as JSON `image` or a multipart upload.
 */
import { InvalidArgumentError } from "@pali/core";
import {
  type DetectResult,
  type LabelSpec,
  type LabelTask,
  labelDecoded,
  type PaliGemma,
  planLabels,
  type SegmentResult,
  type TextResult,
  toCocoDataset,
} from "@pali/sdk";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { admit, promptTokens, type ServerContext, usage } from "./context.js";
import { decodeUpload, imageBytes } from "./images.js";
import { stateOf } from "./limits.js";
import { maskPng } from "./png.js";

const image = { type: "string", minLength: 1 };
const maxTokens = { type: "integer", minimum: 1, maximum: 4096 };
const lang = { type: "string", minLength: 1, maxLength: 16 };
const labels = {
  anyOf: [
    { type: "string", minLength: 1 },
    { type: "array", minItems: 1, maxItems: 64, items: { type: "string", minLength: 1 } },
  ],
};
const format = { type: "object", properties: { format: { enum: ["json", "coco"] } }, additionalProperties: false };

function body(properties: Record<string, object>, required: string[] = []) {
  return { type: "object", properties: { image, ...properties }, required, additionalProperties: false };
}

interface TaskBody {
  image?: string;
  max_tokens?: number;
  lang?: string;
  long?: boolean;
  question?: string;
  labels?: string | string[];
  expression?: string;
  png?: boolean;
  prompt?: string;
  suffix?: string;
}
type TaskRequest = FastifyRequest<{ Body: TaskBody; Querystring: { format?: "json" | "coco" } }>;

type Labeler = Parameters<typeof labelDecoded>[0];
type TaskResult = TextResult | DetectResult | SegmentResult;

/** The SDK's task methods, remembering the full result of the call that labelDecoded makes. */
function recording(pg: PaliGemma) {
  const seen: { result?: TaskResult } = {};
  const keep = <T extends TaskResult>(p: Promise<T>) =>
    p.then((r) => {
      seen.result = r;
      return r;
    });
  const labeler: Labeler = {
    caption: (...a) => keep(pg.caption(...a)),
    ask: (...a) => keep(pg.ask(...a)),
    ocr: (...a) => keep(pg.ocr(...a)),
    detect: (...a) => keep(pg.detect(...a)),
    segment: (...a) => keep(pg.segment(...a)),
  };
  return { labeler, seen };
}

function source(request: TaskRequest): string | Buffer {
  const s = stateOf(request).upload?.bytes ?? request.body.image;
  if (s === undefined)
    throw new InvalidArgumentError(
      'Expected an image: JSON "image" (base64 or a data: URL), or a multipart/form-data file field "image"',
    );
  return s;
}

export function registerTasks(app: FastifyInstance, ctx: ServerContext): void {
  async function imageOf(request: TaskRequest, signal: AbortSignal, pg: PaliGemma) {
    return decodeUpload(await imageBytes(source(request), ctx.images, signal), ctx.images.pixelLimit, pg);
  }

  async function label(request: TaskRequest, reply: FastifyReply, spec: LabelSpec) {
    const b = request.body;
    const plan = planLabels({ ...spec, ...(b.max_tokens === undefined ? {} : { maxTokens: b.max_tokens }) });
    source(request);
    const { pg, ticket } = admit(ctx, request, reply);
    const decoded = await imageOf(request, ticket.signal, pg);
    const { labeler, seen } = recording(pg);
    const output = await labelDecoded(labeler, decoded, plan, ticket.signal);
    const { result } = seen.result as TaskResult;
    stateOf(request).completionTokens = result.tokens.length;
    if (request.query.format === "coco") {
      const name = stateOf(request).upload?.filename || "image";
      return toCocoDataset([{ image: name, task: plan.task, prompt: plan.prompt, result: output }], plan);
    }
    if (b.png && output.segmentations) {
      const masks = (seen.result as SegmentResult).segmentations;
      output.segmentations = await Promise.all(
        output.segmentations.map(async (s, i) => {
          const mask = masks[i]?.mask;
          return mask ? { ...s, png: await maskPng(mask.binary, mask.width, mask.height) } : s;
        }),
      );
    }
    return {
      ...output,
      finish_reason: result.finishReason === "length" ? "length" : "stop",
      timings: result.timings,
      usage: usage(promptTokens(pg, plan.prompt), result.tokens.length),
    };
  }

  const route = (task: LabelTask, schema: object, spec: (b: TaskBody) => LabelSpec) =>
    app.post(`/v1/${task}`, { schema }, (request: TaskRequest, reply) => label(request, reply, spec(request.body)));

  route("caption", { body: body({ lang, long: { type: "boolean" }, max_tokens: maxTokens }) }, (b) => ({
    task: "caption",
    ...(b.lang === undefined ? {} : { lang: b.lang }),
    ...(b.long ? { long: true } : {}),
  }));
  route(
    "answer",
    { body: body({ question: { type: "string", minLength: 1 }, lang, max_tokens: maxTokens }, ["question"]) },
    (b) => ({
      task: "answer",
      question: b.question as string,
      ...(b.lang === undefined ? {} : { lang: b.lang }),
    }),
  );
  route("ocr", { body: body({ max_tokens: maxTokens }) }, () => ({ task: "ocr" }));
  route("detect", { body: body({ labels, max_tokens: maxTokens }, ["labels"]), querystring: format }, (b) => ({
    task: "detect",
    labels: b.labels as string | string[],
  }));
  route(
    "segment",
    {
      body: body({ labels, expression: { type: "string", minLength: 1 }, png: { type: "boolean" }, max_tokens: maxTokens }),
      querystring: format,
    },
    (b) => {
      if ((b.labels === undefined) === (b.expression === undefined))
        throw new InvalidArgumentError('Expected either "labels" ("cat ; dog") or "expression" ("the cat on the left")');
      // An expression is one referring phrase: never split on ";".
      return { task: "segment", labels: b.expression === undefined ? (b.labels as string | string[]) : [b.expression] };
    },
  );

  app.post(
    "/v1/score",
    { schema: { body: body({ prompt: { type: "string", minLength: 1 }, suffix: { type: "string" } }, ["prompt", "suffix"]) } },
    async (request: TaskRequest, reply) => {
      source(request);
      const { pg, ticket } = admit(ctx, request, reply);
      const decoded = await imageOf(request, ticket.signal, pg);
      const r = await pg.score({
        image: decoded,
        prompt: request.body.prompt as string,
        suffix: request.body.suffix as string,
        signal: ticket.signal,
      });
      return { width: decoded.width, height: decoded.height, tokens: r.tokens, logprobs: r.logprobs, total: r.total };
    },
  );
}

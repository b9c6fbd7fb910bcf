/** `pali caption|ask|ocr|detect|segment`: PaliGemma's tasks with typed output and annotated pictures. */
import { InvalidArgumentError } from "@pali/core";
import { PaliGemma } from "@pali/sdk";
import { checkAnnotatedPath, writeAnnotated } from "../annotate.js";
import { loraAdapters } from "../lora.js";
import type { Io } from "../output.js";

export const taskHelp = `Usage:
  pali caption -m MODEL.gguf -i IMAGE [--lang en] [--long]
  pali ask     -m MODEL.gguf -i IMAGE -q QUESTION [--lang en]
  pali ocr     -m MODEL.gguf -i IMAGE
  pali detect  -m MODEL.gguf -i IMAGE -l "cat ; dog" [--out annotated.png]
  pali segment -m MODEL.gguf -i IMAGE -l "the cat on the left" [--mask-decoder FILE] [--out annotated.png]

Common options: --mmproj FILE (default: beside the model), --max-tokens N, --threads N, --json,
--lora FILE[:SCALE] (a LoRA adapter from pali convert --lora; repeatable).
--mask-decoder defaults to mask-decoder-f32.gguf beside the model (pali convert --seg-vae vae-oid.npz makes it).
--out draws the boxes (with labels and confidences) and translucent masks over the original image
(.png, .jpg or .webp, as the name says).
`;

export interface TaskCliOptions {
  task: "caption" | "ask" | "ocr" | "detect" | "segment";
  model: string | undefined;
  mmproj: string | undefined;
  maskDecoder: string | undefined;
  image: string | undefined;
  question: string | undefined;
  labels: string | undefined;
  lang: string | undefined;
  long: boolean;
  out: string | undefined;
  maxTokens: string | undefined;
  threads: string | undefined;
  lora?: string[] | undefined;
  json: boolean;
}

export async function task(o: TaskCliOptions, io: Io): Promise<number> {
  if (!o.model) throw new InvalidArgumentError("Pass the model with -m MODEL.gguf");
  if (!o.image) throw new InvalidArgumentError("Pass an image with -i IMAGE");
  if ((o.task === "detect" || o.task === "segment") && !o.labels)
    throw new InvalidArgumentError(`pali ${o.task} needs what to look for: -l "cat ; dog"`);
  if (o.task === "ask" && !o.question) throw new InvalidArgumentError('pali ask needs a question: -q "what is this?"');
  if (o.out && o.task !== "detect" && o.task !== "segment")
    throw new InvalidArgumentError("--out draws boxes and masks: use it with detect or segment");
  if (o.out) await checkAnnotatedPath(o.out);
  const threads = o.threads === undefined ? undefined : Number(o.threads);
  await using pg = await PaliGemma.load({
    model: o.model,
    ...(o.mmproj ? { mmproj: o.mmproj } : {}),
    ...(o.maskDecoder ? { maskDecoder: o.maskDecoder } : {}),
    ...(threads !== undefined ? { threads } : {}),
    ...loraAdapters(o.lora),
  });
  const gen = o.maxTokens === undefined ? {} : { maxTokens: Number(o.maxTokens) };
  const lang = o.lang ? { lang: o.lang } : {};
  if (o.task === "caption" || o.task === "ask" || o.task === "ocr") {
    const r =
      o.task === "caption"
        ? await pg.caption(o.image, { ...gen, ...lang, long: o.long })
        : o.task === "ask"
          ? await pg.ask(o.image, o.question as string, { ...gen, ...lang })
          : await pg.ocr(o.image, gen);
    io.stdout(
      o.json
        ? `${JSON.stringify({ text: r.text, finishReason: r.result.finishReason, timings: r.result.timings })}\n`
        : `${r.text}\n`,
    );
    return 0;
  }
  const labels = (o.labels as string)
    .split(";")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (o.task === "detect") {
    const r = await pg.detect(o.image, labels, gen);
    if (o.out) await writeAnnotated(o.image, r.detections, o.out);
    if (o.json) {
      io.stdout(
        `${JSON.stringify({ detections: r.detections.map(({ label, box, normalized, loc, score }) => ({ label, box, normalized, loc, score })), text: r.text, ...(o.out ? { out: o.out } : {}) })}\n`,
      );
    } else {
      for (const d of r.detections)
        io.stdout(
          `${d.label}\t${d.box.x1},${d.box.y1},${d.box.x2},${d.box.y2}${d.score === undefined ? "" : `\t${d.score.toFixed(3)}`}\n`,
        );
      if (r.detections.length === 0) io.stdout("(nothing found)\n");
      if (o.out) io.stdout(`wrote ${o.out}\n`);
    }
    return 0;
  }
  const r = await pg.segment(o.image, labels.join(" ; "), gen);
  if (o.out)
    await writeAnnotated(
      o.image,
      r.segmentations.map((s) => ({
        label: s.label,
        box: s.box,
        ...(s.score === undefined ? {} : { score: s.score }),
        mask: s.mask.binary,
      })),
      o.out,
    );
  if (o.json) {
    io.stdout(
      `${JSON.stringify({ segmentations: r.segmentations.map((s) => ({ label: s.label, box: s.box, loc: s.loc, codes: s.codes, score: s.score, rle: s.mask.rle })), text: r.text, ...(o.out ? { out: o.out } : {}) })}\n`,
    );
  } else {
    for (const s of r.segmentations)
      io.stdout(
        `${s.label}\t${s.box.x1},${s.box.y1},${s.box.x2},${s.box.y2}${s.score === undefined ? "" : `\t${s.score.toFixed(3)}`}\tarea ${s.mask.binary.reduce((a, b) => a + b, 0)} px\n`,
      );
    if (r.segmentations.length === 0) io.stdout("(nothing found)\n");
    if (o.out) io.stdout(`wrote ${o.out}\n`);
  }
  return 0;
}

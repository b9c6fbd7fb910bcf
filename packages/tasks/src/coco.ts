/**
 * COCO results-format export ("detection results": one object per box with image_id, category_id,
 * bbox = [x, y, width, height] in pixels and score), as pycocotools' loadRes() reads it.
 */
import { expectFiniteNumber, expectInteger, expectObject, expectString, InvalidArgumentError, invalid } from "@pali/base";
import type { Box } from "./box.js";
import type { CocoRle } from "./rle.js";

export interface CocoCategory {
  id: number;
  name: string;
}

export interface CocoDetection {
  image_id: number;
  category_id: number;
  bbox: [x: number, y: number, width: number, height: number];
  score: number;
  segmentation?: CocoRle;
}

/** What is exported of a result: a Detection or Segmentation fits, optionally with its mask's RLE. */
export interface CocoInput {
  label: string;
  box: Box;
  score?: number;
  rle?: CocoRle;
}

export interface CocoExportOptions {
  imageId: number;
  /** the dataset's categories; a result is matched to the category whose name equals its label */
  categories: readonly CocoCategory[];
  /** the score of results without one (no token probabilities), default 1 */
  defaultScore?: number;
}

/**
 * COCO detection results for one image. Results whose label names no category (the model may answer with
 * a label that was not asked for) are left out; compare the lengths to notice them.
 */
export function toCocoDetections(results: readonly CocoInput[], options: CocoExportOptions): CocoDetection[] {
  if (!Array.isArray(results)) throw invalid("array of results", "results", results);
  const o = expectObject(options, "options");
  const imageId = expectInteger(o.imageId, "options.imageId", 0);
  const defaultScore = o.defaultScore === undefined ? 1 : expectFiniteNumber(o.defaultScore, "options.defaultScore");
  if (!Array.isArray(o.categories)) throw invalid("array of { id, name }", "options.categories", o.categories);
  const byName = new Map<string, number>();
  o.categories.forEach((value: unknown, i: number) => {
    const category = expectObject(value, `options.categories[${i}]`);
    const id = expectInteger(category.id, `options.categories[${i}].id`, 0);
    const name = expectString(category.name, `options.categories[${i}].name`).trim();
    const seen = byName.get(name);
    if (seen !== undefined && seen !== id) {
      throw new InvalidArgumentError(
        `Category name ${JSON.stringify(name)} has two ids (${seen} and ${id}): give each name one id`,
      );
    }
    byName.set(name, id);
  });
  const out: CocoDetection[] = [];
  results.forEach((value: unknown, i: number) => {
    const r = expectObject(value, `results[${i}]`);
    const categoryId = byName.get(expectString(r.label, `results[${i}].label`).trim());
    if (categoryId === undefined) return;
    const box = expectObject(r.box, `results[${i}].box`);
    const x1 = expectFiniteNumber(box.x1, `results[${i}].box.x1`);
    const y1 = expectFiniteNumber(box.y1, `results[${i}].box.y1`);
    const x2 = expectFiniteNumber(box.x2, `results[${i}].box.x2`);
    const y2 = expectFiniteNumber(box.y2, `results[${i}].box.y2`);
    const score = r.score === undefined ? defaultScore : expectFiniteNumber(r.score, `results[${i}].score`);
    const detection: CocoDetection = { image_id: imageId, category_id: categoryId, bbox: [x1, y1, x2 - x1, y2 - y1], score };
    if (r.rle !== undefined) detection.segmentation = r.rle as CocoRle;
    out.push(detection);
  });
  return out;
}

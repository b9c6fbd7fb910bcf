/**
 * A labeling run of detect or segment as a COCO dataset (images, annotations, categories), the format
 * pycocotools' COCO() loads and most labeling tools import. Each annotation keeps the model's score.
 */
import { InvalidArgumentError } from "@pali/core";
import { type CocoRle, toCocoDetections } from "@pali/tasks";
import type { LabelPlan, LabelRecord } from "./label.js";

export interface CocoDataset {
  info: { description: string; date_created: string };
  images: { id: number; file_name: string; width: number; height: number }[];
  annotations: {
    id: number;
    image_id: number;
    category_id: number;
    bbox: [number, number, number, number];
    area: number;
    iscrowd: 0;
    score: number;
    segmentation?: CocoRle;
  }[];
  categories: { id: number; name: string }[];
}

/**
 * Images in record order (ids from 1), one category per label of the plan (ids from 1), and one annotation
 * per box or mask whose label is one of them; error records are left out.
 */
export function toCocoDataset(records: readonly LabelRecord[], plan: LabelPlan): CocoDataset {
  if ((plan.task !== "detect" && plan.task !== "segment") || !plan.labels)
    throw new InvalidArgumentError(`COCO output is for detect and segment, not ${plan.task}`);
  const categories = plan.labels.map((name, i) => ({ id: i + 1, name }));
  const dataset: CocoDataset = {
    info: { description: `pali label: ${plan.prompt}`, date_created: new Date().toISOString() },
    images: [],
    annotations: [],
    categories,
  };
  for (const record of records) {
    if (!("result" in record)) continue;
    const { width, height } = record.result;
    const imageId = dataset.images.length + 1;
    dataset.images.push({ id: imageId, file_name: record.image, width, height });
    const instances = record.result.segmentations ?? record.result.detections ?? [];
    for (const d of toCocoDetections(instances, { imageId, categories })) {
      const [, , w, h] = d.bbox;
      const mask = record.result.segmentations?.find((s) => s.rle === d.segmentation);
      dataset.annotations.push({
        id: dataset.annotations.length + 1,
        image_id: d.image_id,
        category_id: d.category_id,
        bbox: d.bbox,
        area: mask ? mask.area : w * h,
        iscrowd: 0,
        score: d.score,
        ...(d.segmentation ? { segmentation: d.segmentation } : {}),
      });
    }
  }
  return dataset;
}

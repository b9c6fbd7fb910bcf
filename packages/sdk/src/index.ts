export type { AdapterChoice, AdapterOption, LoadedAdapter } from "./adapters.js";
export { findImages, imageExtensions } from "./find-images.js";
export {
  type ColorManagement,
  DEFAULT_PIXEL_LIMIT,
  type DecodeOptions,
  decodeImage,
  type ImageDecoding,
  type ImageInput,
  preprocessImage,
  type RawImage,
  type RgbImage,
} from "./image.js";
export {
  isFatalLabelError,
  type LabelError,
  type LabeledBox,
  type LabeledMask,
  type LabelImagesOptions,
  type LabelItem,
  type LabelOutput,
  type LabelPlan,
  type LabelRecord,
  type LabelSpec,
  type LabelTask,
  labelDecoded,
  labelTasks,
  planLabels,
} from "./label.js";
export { type CocoDataset, toCocoDataset } from "./label-coco.js";
export { LabelJournal, type LabelJournalOptions } from "./label-journal.js";
export { type ModelFiles, openModelFiles } from "./model-files.js";
export type { ImageElement, Images } from "./multi-image.js";
export type { GenerateRequest, LoadOptions, SamplingOptions, ScoreRequest } from "./options.js";
export {
  type FinishReason,
  type GenerateResult,
  type ModelInfo,
  PaliGemma,
  type ScoreResult,
  type StreamChunk,
  type Timings,
} from "./paligemma.js";
export type { DetectResult, SegmentInstance, SegmentMask, SegmentResult, TaskOptions, TextResult } from "./tasks.js";

/**
 * The committed demo model (models/demo: a tiny PaliGemma trained on generated shapes by models/demo/train.py,
 * converted by pali convert) must really caption, detect and segment: 100 held-out generated images with their
 * ground truth, greedy decoding through the SDK's task methods, no Python. About 15 seconds on 2 cores.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as sdk from "../src/index.js";
import { fixtures } from "./helpers.js";

const demo = join(fixtures, "..", "demo");

describe("demo model", () => {
  it("captions exactly, finds the shapes and masks them on 100 held-out images", async () => {
    // @ts-expect-error: a plain ES module without types, shared with the command-line evaluation
    const { evaluateDemo } = await import("../../../models/demo/eval-pali.mjs");
    const r = await evaluateDemo({ model: join(demo, "pali-demo-q8_0.gguf"), heldout: join(demo, "heldout"), threads: 2, sdk });
    expect(r.images).toBe(100);
    expect(r.caption_exact).toBeGreaterThanOrEqual(0.8);
    expect(r.detection_miou).toBeGreaterThanOrEqual(0.7);
    expect(r.segment_mask_miou).toBeGreaterThanOrEqual(0.7);
  }, 600_000);
});

/**
 * Deterministic mutations of a GGUF file or an image: the same (base, seed) always gives the same bytes,
 * so a crash is kept as its seed and rebuilt exactly.
 */
import { addEntry, encodeEntry, replaceEntry, TYPE, withHeader } from "./gguf-map.mjs";

/** mulberry32: a small, fast, seedable PRNG. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    chance: (p) => next() < p,
  };
}

const interesting32 = [
  0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 511, 512, 513, 1023, 1024, 4095, 4096, 65535, 65536, 0x7fffffff,
  0x80000000, 0xfffffffe, 0xffffffff,
];
const interesting64 = [
  0n,
  1n,
  2n,
  31n,
  32n,
  255n,
  4096n,
  0x7fffffffn,
  0xffffffffn,
  0x100000000n,
  1n << 40n,
  (1n << 53n) - 1n,
  1n << 53n,
  (1n << 63n) - 1n,
  1n << 63n,
  (1n << 64n) - 1n,
];
const interestingF32 = [
  0,
  -0,
  1,
  -1,
  1e-30,
  1e30,
  0.5,
  1e-6,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  3.4e38,
];

/** Keys a native reader looks at, to add or rename to (libllama's LLM_KV names for gemma, and ours). */
export const dictionaryKeys = [
  "gemma.expert_count",
  "gemma.expert_used_count",
  "gemma.attention.causal",
  "gemma.rope.scaling.type",
  "gemma.rope.scaling.factor",
  "gemma.nextn_predict_layers",
  "gemma.attention.sliding_window",
  "gemma.rope.dimension_count",
  "gemma.vocab_size",
  "gemma.pooling_type",
  "gemma2.attention.sliding_window_pattern",
  "general.alignment",
  "general.file_type",
  "general.sampling.top_k",
  "split.count",
  "split.no",
  "tokenizer.ggml.pre",
  "tokenizer.ggml.merges",
  "tokenizer.ggml.precompiled_charsmap",
  "tokenizer.ggml.suppress_tokens",
  "tokenizer.ggml.add_sep_token",
  "tokenizer.ggml.eot_token_id",
  "tokenizer.ggml.token_type_count",
  "clip.vision.image_size",
  "clip.vision.block_count",
  "paligemma.has_mask_decoder",
  "paligemma.mask.grid_size",
  "paligemma.mask.res_block_count",
];

function randomValue(r) {
  const type = r.int(14); // one past the last type id: also an unknown type
  let value;
  switch (type) {
    case TYPE.str:
      value = Buffer.alloc(8 + 4);
      value.writeBigUInt64LE(r.chance(0.9) ? 4n : r.pick(interesting64), 0);
      value.write("gemm", 8);
      break;
    case TYPE.arr: {
      const itemType = r.int(13);
      const n = r.pick([0, 1, 2, 3, 16]);
      value = Buffer.alloc(12 + n * 8);
      value.writeUInt32LE(itemType, 0);
      value.writeBigUInt64LE(BigInt(n), 4);
      for (let i = 0; i < n; i++) value.writeUInt32LE(r.pick(interesting32), 12 + i * 8);
      break;
    }
    default:
      value = Buffer.alloc(8);
      value.writeUInt32LE(r.pick(interesting32), 0);
  }
  return { type, value };
}

/** A u64 count moved by delta, kept within 0 .. 2⁶⁴−1 (an earlier edit may have left it at the top). */
function nudged(value, delta) {
  const v = value + delta;
  return v < 0n ? 0n : v > 0xffff_ffff_ffff_ffffn ? 0xffff_ffff_ffff_ffffn : v;
}

function writeScalar(out, at, size, r) {
  if (size === 8) out.writeBigUInt64LE(r.pick(interesting64), at);
  else if (size === 4) {
    if (r.chance(0.2)) out.writeFloatLE(r.pick(interestingF32), at);
    else out.writeUInt32LE(r.pick(interesting32) >>> 0, at);
  } else if (size === 2) out.writeUInt16LE(r.int(65536), at);
  else out.writeUInt8(r.pick([0, 1, 2, 0x7f, 0x80, 0xff]), at);
}

/** One structured edit guided by the map. Returns the mutant and whether it touches only tensor data. */
function fieldEdit(base, map, r, focus) {
  const out = Buffer.from(base);
  const keys = focus ? map.keys.filter((k) => focus.test(k.key)) : map.keys;
  const choice = r.int(focus ? 6 : 10);
  const k = r.pick(keys.length > 0 ? keys : map.keys);
  switch (choice) {
    case 0: // a value rewritten with an interesting number of the same width
      if (k.type === TYPE.arr || k.type === TYPE.str) writeScalar(out, k.type === TYPE.arr ? k.countOffset : k.valueOffset, 8, r);
      else writeScalar(out, k.valueOffset, Math.min(8, k.end - k.valueOffset), r);
      return out;
    case 1: // the value's type id
      out.writeUInt32LE(r.chance(0.9) ? r.int(13) : r.pick(interesting32) >>> 0, k.typeOffset);
      return out;
    case 2: // an array's item type or count
      if (k.type !== TYPE.arr) return fieldEdit(base, map, r, focus);
      if (r.chance(0.5)) out.writeUInt32LE(r.int(14), k.valueOffset);
      else out.writeBigUInt64LE(nudged(base.readBigUInt64LE(k.countOffset), r.pick([-1n, 1n, -2n, 100n])), k.countOffset);
      return out;
    case 3: {
      // one array item: a string made equal to another of its length, emptied, or a number rewritten
      if (k.type !== TYPE.arr) return fieldEdit(base, map, r, focus);
      if (k.items) {
        const i = r.int(k.items.length);
        const a = k.items[i];
        if (r.chance(0.6)) {
          const same = k.items.filter((s) => s.length === a.length);
          const b = r.pick(same);
          base.copy(out, a.offset, b.offset, b.offset + b.length);
        } else if (a.length > 0) out[a.offset + r.int(a.length)] = r.int(256);
        return out;
      }
      const size = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8][k.itemType] || 1;
      const n = (k.end - k.itemsOffset) / size;
      if (n > 0) writeScalar(out, k.itemsOffset + r.int(n) * size, size, r);
      return out;
    }
    case 4: // a key renamed to one a native reader looks at (the file is re-laid out around it)
    case 5: {
      const name = r.pick(dictionaryKeys);
      const kept = base.subarray(k.typeOffset, k.end);
      return replaceEntry(base, map, k, encodeEntry(name, kept.readUInt32LE(0), kept.subarray(4)));
    }
    case 6: {
      // a new entry with a dictionary key and a random value
      const { type, value } = randomValue(r);
      return addEntry(base, map, encodeEntry(r.pick(dictionaryKeys), type, value));
    }
    case 7: {
      // a tensor's dims, dim count, type or offset
      const t = r.pick(map.tensors);
      const what = r.int(4);
      if (what === 0) out.writeBigUInt64LE(r.chance(0.5) ? r.pick(interesting64) : BigInt(r.pick(t.shape)), r.pick(t.dimOffsets));
      else if (what === 1) out.writeUInt32LE(r.pick([0, 1, 2, 3, 4, 5, 0xffffffff]), t.nDimsOffset);
      else if (what === 2) out.writeUInt32LE(r.chance(0.9) ? r.int(43) : r.pick(interesting32) >>> 0, t.typeOffset);
      else out.writeBigUInt64LE(r.chance(0.5) ? r.pick(interesting64) : BigInt(r.pick(map.tensors).dataOffset), t.offsetOffset);
      return out;
    }
    case 8: // tensor or metadata count
      out.writeBigUInt64LE(
        nudged(base.readBigUInt64LE(r.chance(0.5) ? 8 : 16), r.pick([-1n, 1n, -5n, 1000n])),
        r.chance(0.5) ? 8 : 16,
      );
      return out;
    default: {
      // a tensor renamed to another's name or with one byte changed
      const t = r.pick(map.tensors);
      const len = Number(base.readBigUInt64LE(t.nameOffset));
      out[t.nameOffset + 8 + r.int(len)] = r.pick([0x30, 0x31, 0x39, 0x2e, 0x5f, 0x00, 0x78]);
      return out;
    }
  }
}

/**
 * A mutant of a GGUF file. `dataOnly` is true when only tensor data bytes changed (no native load needed
 * beyond a sample). `focus` restricts field edits to keys matching it (the tokenizer target).
 */
export function mutateGGUF(base, map, seed, focus) {
  const r = rng(seed);
  const op = r.int(100);
  if (op < 8) {
    // truncation, mostly inside the header
    const at = r.chance(0.8) ? r.int(map.headerEnd + 64) : r.int(base.length);
    return { bytes: base.subarray(0, Math.min(at, base.length - 1)), dataOnly: false };
  }
  if (op < 25) {
    // byte flips, mostly in the header
    const out = Buffer.from(base);
    const n = 1 + r.int(4);
    let dataOnly = true;
    for (let i = 0; i < n; i++) {
      const inHeader = r.chance(0.85);
      const at = inHeader ? r.int(map.headerEnd) : map.dataStart + r.int(base.length - map.dataStart);
      if (at < map.dataStart) dataOnly = false;
      out[at] ^= 1 << r.int(8);
    }
    return { bytes: out, dataOnly };
  }
  if (op < 30) {
    // tensor data only
    const out = Buffer.from(base);
    for (let i = 0; i < 8; i++) out[map.dataStart + r.int(base.length - map.dataStart)] = r.int(256);
    return { bytes: out, dataOnly: true };
  }
  // one to three structured edits; later ones apply to the first result's layout only when it kept it
  let bytes = fieldEdit(base, map, r, focus);
  if (r.chance(0.25) && bytes.length === base.length) bytes = fieldEdit(bytes, map, r, focus);
  return { bytes, dataOnly: false };
}

/** A mutant of an image file: flips, overwrites, truncation, chunk-length rewrites, splices. */
export function mutateImage(base, seed) {
  const r = rng(seed);
  const out = Buffer.from(base);
  const op = r.int(5);
  if (op === 0) return out.subarray(0, r.int(base.length));
  if (op === 1) {
    for (let i = 0, n = 1 + r.int(8); i < n; i++) out[r.int(out.length)] ^= 1 << r.int(8);
    return out;
  }
  if (op === 2) {
    // a 32-bit field rewritten: PNG chunk lengths, dims, JPEG marker lengths sit in the first bytes
    const at = r.chance(0.7) ? r.int(Math.min(64, out.length - 4)) : r.int(out.length - 4);
    out.writeUInt32BE(r.pick(interesting32) >>> 0, at);
    return out;
  }
  if (op === 3) {
    const at = r.int(out.length);
    const len = 1 + r.int(64);
    return Buffer.concat([out.subarray(0, at), out.subarray(r.int(out.length), r.int(out.length) + len), out.subarray(at)]);
  }
  for (let i = 0, n = 1 + r.int(32); i < n; i++) out[r.int(out.length)] = r.int(256);
  return out;
}

export { withHeader };

/**
 * A decoder whose hyperparameters are changed consistently with its tensors, so that it passes the
 * validator and exercises native code with unusual head layouts: the demo's 128-wide attention regrouped
 * into heads of width d (H = 128/d, Hkv = 32/d), plus scalar keys moved within their accepted ranges.
 */
export function mutateHparams(base, map, seed) {
  const r = rng(seed);
  const out = Buffer.from(base);
  const at = (key) => map.keys.find((k) => k.key === key);
  const d = r.pick([2, 4, 8, 16, 32]);
  const set = (key, v) => {
    const f = at(key);
    if (f) out.writeUInt32LE(v, f.valueOffset);
  };
  set("gemma.attention.head_count", 128 / d);
  set("gemma.attention.head_count_kv", 32 / d);
  set("gemma.attention.key_length", d);
  set("gemma.attention.value_length", d);
  if (r.chance(0.5)) set("gemma.context_length", r.pick([1, 2, 64, 128, 131072]));
  if (r.chance(0.5)) set("tokenizer.ggml.eos_token_id", r.int(5184));
  if (r.chance(0.3)) set("tokenizer.ggml.bos_token_id", r.int(5184));
  const f32 = (key, v) => {
    const f = at(key);
    if (f) out.writeFloatLE(v, f.valueOffset);
  };
  if (r.chance(0.5)) f32("gemma.rope.freq_base", r.pick([1, 2, 1e4, 1e6, 1e9]));
  if (r.chance(0.5)) f32("gemma.attention.layer_norm_rms_epsilon", r.pick([1e-12, 1e-6, 0.01, 0.1]));
  if (r.chance(0.3)) return { bytes: fieldEdit(out, map, r, undefined), dataOnly: false };
  return { bytes: out, dataOnly: false };
}

/** GGUF v3 value types and ggml tensor types. */

/** Metadata value types, named as ggml's gguf_type_name() names them; the index is the on-disk id. */
export const valueTypeNames = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"] as const;
export type GGUFValueTypeName = (typeof valueTypeNames)[number];
export type GGUFScalarTypeName = Exclude<GGUFValueTypeName, "arr">;

export interface GGUFNumericArrays {
  u8: Uint8Array;
  i8: Int8Array;
  u16: Uint16Array;
  i16: Int16Array;
  u32: Uint32Array;
  i32: Int32Array;
  f32: Float32Array;
  f64: Float64Array;
  u64: BigUint64Array;
  i64: BigInt64Array;
}
export type GGUFNumericTypeName = keyof GGUFNumericArrays;

export type GGUFArrayValue =
  | { [K in GGUFNumericTypeName]: { type: "arr"; itemType: K; value: GGUFNumericArrays[K] } }[GGUFNumericTypeName]
  | { type: "arr"; itemType: "bool"; value: boolean[] }
  | { type: "arr"; itemType: "str"; value: string[] };

export type GGUFValue =
  | { type: "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64"; value: number }
  | { type: "u64" | "i64"; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "str"; value: string }
  | GGUFArrayValue;

/** Bytes of one scalar of each fixed-size type. */
export const scalarByteSize: Record<Exclude<GGUFScalarTypeName, "str">, number> = {
  u8: 1,
  i8: 1,
  bool: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  u64: 8,
  i64: 8,
  f64: 8,
};

export const numericArrayConstructors = {
  u8: Uint8Array,
  i8: Int8Array,
  u16: Uint16Array,
  i16: Int16Array,
  u32: Uint32Array,
  i32: Int32Array,
  f32: Float32Array,
  f64: Float64Array,
  u64: BigUint64Array,
  i64: BigInt64Array,
} as const;

export interface GGMLTypeInfo {
  id: number;
  name: string;
  /** elements per block */
  blockSize: number;
  /** bytes per block */
  typeSize: number;
}

// [id, name, elements per block, bytes per block], as ggml of the pinned llama.cpp release reports them
// (ggml_type_name, ggml_blck_size, ggml_type_size); a test checks them against ggml's own reader.
const ggmlTypeTable: [number, string, number, number][] = [
  [0, "f32", 1, 4],
  [1, "f16", 1, 2],
  [2, "q4_0", 32, 18],
  [3, "q4_1", 32, 20],
  [6, "q5_0", 32, 22],
  [7, "q5_1", 32, 24],
  [8, "q8_0", 32, 34],
  [9, "q8_1", 32, 36],
  [10, "q2_K", 256, 84],
  [11, "q3_K", 256, 110],
  [12, "q4_K", 256, 144],
  [13, "q5_K", 256, 176],
  [14, "q6_K", 256, 210],
  [15, "q8_K", 256, 292],
  [16, "iq2_xxs", 256, 66],
  [17, "iq2_xs", 256, 74],
  [18, "iq3_xxs", 256, 98],
  [19, "iq1_s", 256, 50],
  [20, "iq4_nl", 32, 18],
  [21, "iq3_s", 256, 110],
  [22, "iq2_s", 256, 82],
  [23, "iq4_xs", 256, 136],
  [24, "i8", 1, 1],
  [25, "i16", 1, 2],
  [26, "i32", 1, 4],
  [27, "i64", 1, 8],
  [28, "f64", 1, 8],
  [29, "iq1_m", 256, 56],
  [30, "bf16", 1, 2],
  [34, "tq1_0", 256, 54],
  [35, "tq2_0", 256, 66],
  [39, "mxfp4", 32, 17],
  [40, "nvfp4", 64, 36],
  [41, "q1_0", 128, 18],
  [42, "q2_0", 64, 18],
];

export const ggmlTypes: ReadonlyMap<number, GGMLTypeInfo> = new Map(
  ggmlTypeTable.map(([id, name, blockSize, typeSize]) => [id, { id, name, blockSize, typeSize }]),
);

export const ggmlTypeByName: ReadonlyMap<string, GGMLTypeInfo> = new Map(
  [...ggmlTypes.values()].map((t) => [t.name.toLowerCase(), t]),
);

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGML_MAX_DIMS = 4;

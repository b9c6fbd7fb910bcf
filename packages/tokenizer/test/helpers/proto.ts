/** A minimal protobuf writer for hand-made SentencePiece models in tests. */

function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? b | 0x80 : b);
  } while (v > 0n);
  return out;
}

export const field = {
  varint: (n: number, value: number | bigint | boolean): number[] => [
    ...varint(n * 8),
    ...varint(typeof value === "boolean" ? Number(value) : value),
  ],
  bytes: (n: number, data: Uint8Array | number[]): number[] => [...varint(n * 8 + 2), ...varint(data.length), ...data],
  string: (n: number, text: string): number[] => field.bytes(n, Array.from(new TextEncoder().encode(text))),
  float: (n: number, value: number): number[] => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    return [...varint(n * 8 + 5), ...b];
  },
};

export interface TestPiece {
  piece: string;
  score?: number;
  /** sentencepiece type number; default NORMAL (1) */
  type?: number;
}

export interface TestModel {
  pieces: TestPiece[];
  modelType?: number;
  byteFallback?: boolean;
  addDummyPrefix?: boolean;
  removeExtraWhitespaces?: boolean;
  treatWhitespaceAsSuffix?: boolean;
  normalizerName?: string;
  charsMap?: number[];
  bosId?: number;
  eosId?: number;
  padId?: number;
  unkId?: number;
}

export function encodePiece(p: TestPiece): number[] {
  return [...field.string(1, p.piece), ...field.float(2, p.score ?? 0), ...field.varint(3, p.type ?? 1)];
}

/** A serialized ModelProto; unset settings are written as Gemma has them. */
export function encodeModel(m: TestModel): Uint8Array {
  const trainer = [
    ...field.string(2, "test"), // model_prefix, an unrelated field the reader must skip
    ...field.varint(3, m.modelType ?? 2),
    ...field.varint(35, m.byteFallback ?? false),
    ...(m.treatWhitespaceAsSuffix ? field.varint(24, true) : []),
    ...field.varint(40, m.unkId ?? 0),
    ...field.varint(41, m.bosId ?? 1),
    ...field.varint(42, m.eosId ?? 2),
    ...field.varint(43, m.padId ?? -1),
  ];
  const normalizer = [
    ...field.string(1, m.normalizerName ?? "identity"),
    ...(m.charsMap ? field.bytes(2, m.charsMap) : []),
    ...field.varint(3, m.addDummyPrefix ?? false),
    ...field.varint(4, m.removeExtraWhitespaces ?? false),
  ];
  return Uint8Array.from([
    ...m.pieces.flatMap((p) => field.bytes(1, encodePiece(p))),
    ...field.bytes(2, trainer),
    ...field.bytes(3, normalizer),
  ]);
}

/** <unk>, <s>, </s> then the given pieces: ids 0, 1, 2, 3... */
export function smallModel(pieces: TestPiece[], settings: Omit<TestModel, "pieces"> = {}): Uint8Array {
  return encodeModel({
    pieces: [{ piece: "<unk>", type: 2 }, { piece: "<s>", type: 3 }, { piece: "</s>", type: 3 }, ...pieces],
    ...settings,
  });
}

export function bytePieces(): TestPiece[] {
  return Array.from({ length: 256 }, (_, b) => ({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, type: 6 }));
}

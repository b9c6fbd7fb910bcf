/**
 * A small decoder for SentencePiece's `ModelProto` (sentencepiece_model.proto): the pieces and the few
 * trainer and normalizer settings that change how text is encoded. Field numbers and defaults are those
 * of the proto2 schema; unknown fields are skipped, as protobuf does.
 */
import { ModelFormatError } from "@pali/base";

/** sentencepiece's `ModelProto.SentencePiece.Type`; llama.cpp's `tokenizer.ggml.token_type` uses the same numbers. */
export const PieceType = {
  Normal: 1,
  Unknown: 2,
  Control: 3,
  UserDefined: 4,
  Unused: 5,
  Byte: 6,
} as const;
export type PieceType = (typeof PieceType)[keyof typeof PieceType];

export function isPieceType(value: number): value is PieceType {
  return Number.isInteger(value) && value >= PieceType.Normal && value <= PieceType.Byte;
}

export interface SentencePieceModel {
  pieces: { piece: string; score: number; type: PieceType }[];
  byteFallback: boolean;
  addDummyPrefix: boolean;
  /** the id of the UNKNOWN piece (sentencepiece requires exactly one) */
  unkId: number;
  /** -1 where the model has none */
  bosId: number;
  eosId: number;
  padId: number;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
  treatWhitespaceAsSuffix: boolean;
  /** normalizer_spec.name, e.g. "identity" (Gemma) or "nmt_nfkc" */
  normalizerName: string;
  /** bytes of normalizer_spec.precompiled_charsmap; 0 means no character normalization */
  charsMapSize: number;
}

const MODEL_TYPE_BPE = 2;
const MODEL_TYPE_NAMES: Record<number, string> = { 1: "unigram", 2: "bpe", 3: "word", 4: "char" };

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Reads protobuf wire format from a byte range, failing with ModelFormatError on anything malformed. */
class ProtoReader {
  private readonly view: DataView;
  pos: number;

  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
  }

  fail(message: string): ModelFormatError {
    return new ModelFormatError(
      `Invalid SentencePiece model: ${message} (at byte ${this.pos}). The tokenizer.model file is damaged or not a SentencePiece model; download it again.`,
    );
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint as [low 32 bits, high 32 bits], both unsigned. */
  private varintParts(): [number, number] {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw this.fail("truncated varint");
      const b = this.bytes[this.pos++] as number;
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if ((b & 0x80) === 0) return [lo >>> 0, hi >>> 0];
    }
    throw this.fail("varint longer than 10 bytes");
  }

  /** An int32 or enum field: negative values arrive sign-extended to 64 bits, the low 32 bits are the value. */
  int32(): number {
    return this.varintParts()[0] | 0;
  }

  bool(): boolean {
    const [lo, hi] = this.varintParts();
    return lo !== 0 || hi !== 0;
  }

  /** A length that must fit in what is left of this message. */
  private length(): number {
    const [lo, hi] = this.varintParts();
    if (hi !== 0 || lo > this.end - this.pos)
      throw this.fail(`length ${hi !== 0 ? "over 4 GiB" : lo} runs past the end of the message`);
    return lo;
  }

  float(): number {
    if (this.end - this.pos < 4) throw this.fail("truncated float");
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  string(what: string): string {
    const n = this.length();
    try {
      return utf8.decode(this.bytes.subarray(this.pos, this.pos + n));
    } catch {
      throw this.fail(`${what} is not valid UTF-8`);
    } finally {
      this.pos += n;
    }
  }

  /** A nested message as its own reader; advances past it. */
  message(): ProtoReader {
    const n = this.length();
    const sub = new ProtoReader(this.bytes, this.pos, this.pos + n);
    this.pos += n;
    return sub;
  }

  /** Skips a length-delimited field and returns its size. */
  skipBytes(): number {
    const n = this.length();
    this.pos += n;
    return n;
  }

  /** The next tag as [field number, wire type]. */
  tag(): [number, number] {
    const [lo, hi] = this.varintParts();
    const field = lo >>> 3;
    if (hi !== 0 || field === 0) throw this.fail(`invalid field tag ${lo}`);
    return [field, lo & 7];
  }

  expect(wire: number, actual: number, field: string): void {
    if (wire !== actual) throw this.fail(`field ${field} has wire type ${actual}, expected ${wire}`);
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varintParts();
        return;
      case WIRE_I64:
        if (this.end - this.pos < 8) throw this.fail("truncated fixed64");
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.skipBytes();
        return;
      case WIRE_I32:
        if (this.end - this.pos < 4) throw this.fail("truncated fixed32");
        this.pos += 4;
        return;
      default:
        // groups (3, 4) are not used by sentencepiece; 6 and 7 do not exist
        throw this.fail(`unsupported wire type ${wire}`);
    }
  }
}

interface Settings {
  modelType: number;
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  normalizerName: string;
  charsMapSize: number;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

function readPiece(r: ProtoReader, index: number): { piece: string; score: number; type: PieceType } {
  let piece = "";
  let score = 0;
  let type: number = PieceType.Normal;
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) {
      r.expect(WIRE_LEN, wire, "pieces.piece");
      piece = r.string(`piece ${index}`);
    } else if (field === 2) {
      r.expect(WIRE_I32, wire, "pieces.score");
      score = r.float();
    } else if (field === 3) {
      r.expect(WIRE_VARINT, wire, "pieces.type");
      type = r.int32();
    } else r.skip(wire);
  }
  if (!isPieceType(type)) throw r.fail(`piece ${index} has unknown type ${type}`);
  return { piece, score, type };
}

// Embedded messages that occur more than once merge into one, as protobuf specifies; so do these readers.
function readTrainerSpec(r: ProtoReader, s: Settings): void {
  while (!r.done) {
    const [field, wire] = r.tag();
    const int = (): number => {
      r.expect(WIRE_VARINT, wire, `trainer_spec.${field}`);
      return r.int32();
    };
    const bool = (): boolean => {
      r.expect(WIRE_VARINT, wire, `trainer_spec.${field}`);
      return r.bool();
    };
    if (field === 3) s.modelType = int();
    else if (field === 24) s.treatWhitespaceAsSuffix = bool();
    else if (field === 35) s.byteFallback = bool();
    else if (field === 40) s.unkId = int();
    else if (field === 41) s.bosId = int();
    else if (field === 42) s.eosId = int();
    else if (field === 43) s.padId = int();
    else r.skip(wire);
  }
}

function readNormalizerSpec(r: ProtoReader, s: Settings): void {
  while (!r.done) {
    const [field, wire] = r.tag();
    const bool = (): boolean => {
      r.expect(WIRE_VARINT, wire, `normalizer_spec.${field}`);
      return r.bool();
    };
    if (field === 1) {
      r.expect(WIRE_LEN, wire, "normalizer_spec.name");
      s.normalizerName = r.string("normalizer_spec.name");
    } else if (field === 2) {
      r.expect(WIRE_LEN, wire, "normalizer_spec.precompiled_charsmap");
      s.charsMapSize = r.skipBytes();
    } else if (field === 3) s.addDummyPrefix = bool();
    else if (field === 4) s.removeExtraWhitespaces = bool();
    else if (field === 5) s.escapeWhitespaces = bool();
    else r.skip(wire);
  }
}

/** The piece names sentencepiece gives byte pieces: <0x00> .. <0xFF>, upper-case hex. */
export function bytePieceValue(piece: string): number {
  if (piece.length !== 6 || !piece.startsWith("<0x") || piece[5] !== ">") return -1;
  const hex = piece.slice(3, 5);
  return /^[0-9A-F]{2}$/.test(hex) ? Number.parseInt(hex, 16) : -1;
}

/**
 * Checks what sentencepiece's ModelInterface checks when it loads a model: non-empty pieces without NUL,
 * no piece defined twice in the same class, exactly one UNKNOWN piece, and 256 well-formed byte pieces
 * when (and only when) byte fallback is on. Returns the UNKNOWN piece's id.
 */
export function validatePieces(
  pieces: readonly { piece: string; type: PieceType }[],
  byteFallback: boolean,
  fail: (message: string) => Error,
): number {
  const normal = new Set<string>();
  const reserved = new Set<string>();
  const bytes = new Set<number>();
  let unkId = -1;
  pieces.forEach(({ piece, type }, id) => {
    if (piece.length === 0) throw fail(`piece ${id} is empty`);
    if (piece.includes("\0")) throw fail(`piece ${id} contains a NUL character`);
    const isNormal = type === PieceType.Normal || type === PieceType.UserDefined || type === PieceType.Unused;
    const set = isNormal ? normal : reserved;
    if (set.has(piece)) throw fail(`piece ${JSON.stringify(piece)} is defined twice (again as id ${id})`);
    set.add(piece);
    if (type === PieceType.Unknown) {
      if (unkId >= 0) throw fail(`two UNKNOWN pieces (ids ${unkId} and ${id})`);
      unkId = id;
    }
    if (type === PieceType.Byte) {
      if (!byteFallback) throw fail(`byte piece ${piece} (id ${id}) in a model without byte fallback`);
      const value = bytePieceValue(piece);
      if (value < 0) throw fail(`byte piece ${JSON.stringify(piece)} (id ${id}) is not of the form <0xNN>`);
      bytes.add(value);
    }
  });
  if (unkId < 0) throw fail("no UNKNOWN piece");
  if (byteFallback && bytes.size !== 256) throw fail(`byte fallback is on but only ${bytes.size} of the 256 byte pieces exist`);
  return unkId;
}

/**
 * Decodes a SentencePiece `tokenizer.model` (serialized ModelProto). Only BPE models are accepted;
 * anything malformed, truncated or inconsistent throws ModelFormatError.
 */
export function parseSentencePieceModel(bytes: Uint8Array): SentencePieceModel {
  if (!(bytes instanceof Uint8Array)) {
    throw new ModelFormatError("Invalid SentencePiece model: expected the bytes of tokenizer.model as a Uint8Array");
  }
  const r = new ProtoReader(bytes, 0, bytes.length);
  const s: Settings = {
    modelType: 1,
    byteFallback: false,
    treatWhitespaceAsSuffix: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    normalizerName: "",
    charsMapSize: 0,
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
  const pieces: SentencePieceModel["pieces"] = [];
  let sawTrainerSpec = false;
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) {
      r.expect(WIRE_LEN, wire, "pieces");
      pieces.push(readPiece(r.message(), pieces.length));
    } else if (field === 2) {
      r.expect(WIRE_LEN, wire, "trainer_spec");
      readTrainerSpec(r.message(), s);
      sawTrainerSpec = true;
    } else if (field === 3) {
      r.expect(WIRE_LEN, wire, "normalizer_spec");
      readNormalizerSpec(r.message(), s);
    } else r.skip(wire);
  }
  const fail = (message: string) =>
    new ModelFormatError(
      `Invalid SentencePiece model: ${message}. The tokenizer.model file is damaged or not a SentencePiece model.`,
    );
  if (pieces.length === 0 || !sawTrainerSpec) {
    throw fail(pieces.length === 0 ? "it has no pieces" : "it has no trainer_spec");
  }
  if (s.modelType !== MODEL_TYPE_BPE) {
    const name = MODEL_TYPE_NAMES[s.modelType] ?? `type ${s.modelType}`;
    throw new ModelFormatError(
      `SentencePiece model is ${name}, but pali's tokenizer implements BPE only (Gemma and PaliGemma use BPE). Use the tokenizer.model that came with the PaliGemma checkpoint.`,
    );
  }
  const unkId = validatePieces(pieces, s.byteFallback, fail);
  // Like sentencepiece, which resolves these by name at run time, an id without a piece means "none".
  const specialId = (id: number): number => (id >= 0 && id < pieces.length ? id : -1);
  return {
    pieces,
    byteFallback: s.byteFallback,
    addDummyPrefix: s.addDummyPrefix,
    unkId,
    bosId: specialId(s.bosId),
    eosId: specialId(s.eosId),
    padId: specialId(s.padId),
    removeExtraWhitespaces: s.removeExtraWhitespaces,
    escapeWhitespaces: s.escapeWhitespaces,
    treatWhitespaceAsSuffix: s.treatWhitespaceAsSuffix,
    normalizerName: s.normalizerName,
    charsMapSize: s.charsMapSize,
  };
}

/**
 * Gemma's SentencePiece BPE tokenizer, id-for-id identical to the `sentencepiece` library for BPE models
 * with an identity normalizer (Gemma, PaliGemma):
 *  - spaces become "▁"; no dummy prefix unless the model asks for one;
 *  - user-defined pieces (<locNNNN>, <segNNN>, whitespace runs, ...) are matched whole, longest first,
 *    before BPE; control pieces (<bos>, <eos>, <pad>) and <unk> are plain text unless `parseSpecial`;
 *  - BPE merges the adjacent pair whose piece has the highest score (ties: leftmost) until none is left;
 *  - characters outside the vocabulary become their UTF-8 byte pieces <0xNN> (byte fallback).
 * Lone UTF-16 surrogates, which have no UTF-8 form, are replaced by U+FFFD before encoding.
 * Other sentencepiece settings honoured: add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces,
 * UNUSED pieces; models with a normalization charsmap or treat_whitespace_as_suffix are refused.
 */
import { expectBoolean, expectObject, invalid } from "@pali/base";
import type { GGUFFile } from "@pali/gguf";
import { BpeEngine, type RevMerge } from "./bpe.js";
import { specFromGGUF, specFromSentencePiece, type TokenizerSpec } from "./load.js";
import { bytePieceValue, PieceType } from "./sentencepiece-model.js";
import { decodeBytes, forEachUtf8Byte, toWellFormed } from "./utf8.js";
import { MergeBigrams, PieceTrie } from "./vocab.js";

export interface EncodeOptions {
  /**
   * Also match control pieces (<bos>, <eos>, <pad>), <unk> and added tokens such as <image> whole, as
   * Hugging Face's tokenizer does for special tokens. Default false: sentencepiece's behaviour, where
   * only user-defined pieces are atomic and "<bos>" in the text is just characters.
   */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Write control pieces, <unk> and added tokens (e.g. "<bos>", "<image>") into the text. Default false. */
  keepSpecial?: boolean;
}

/** Turns ids into text as they arrive, never splitting a UTF-8 character made of byte pieces. */
export interface StreamDecoder {
  /** The text that `id` completes; bytes of an unfinished character wait for the next ids. */
  push(id: number): string;
  /** Whatever is still pending (an unfinished character becomes U+FFFD per byte, as decode() does). */
  flush(): string;
}

const SPACE = "▁";
const LEADING_SPACES = /^ +/;
const SPACE_RUNS = / {2,}/g;
/** Chunks up to this many code units are remembered; most words repeat. */
const CACHE_MAX_CHUNK = 48;
const CACHE_MAX_ENTRIES = 1 << 16;

function isSpecialType(type: number): boolean {
  return type === PieceType.Control || type === PieceType.Unknown;
}

export class Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly padId: number;
  readonly addDummyPrefix: boolean;

  private readonly spec: TokenizerSpec;
  /** NORMAL, USER_DEFINED, UNUSED pieces of the model → id (sentencepiece's pieces_) */
  private readonly mergeable = new Map<string, number>();
  /** CONTROL, UNKNOWN, BYTE pieces → id (sentencepiece's reserved_id_map_, looked up first) */
  private readonly reserved = new Map<string, number>();
  private readonly addedIds = new Map<string, number>();
  private readonly userTrie = new PieceTrie();
  private readonly specialTrie = new PieceTrie();
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly byteOf: Int16Array;
  private readonly surfaces: string[];
  private readonly special: Uint8Array;
  private readonly unused: Uint8Array;
  private readonly hasUnused: boolean;
  private readonly bigrams: MergeBigrams;
  private readonly engine: BpeEngine;
  private readonly cache = new Map<string, number[]>();
  // State of the encode() call in progress (encode is synchronous and never re-entered).
  private out: number[] = [];
  private prevUnk = false;
  private revMerge: RevMerge | null = null;
  private readonly emitRange = (from: number, to: number): void => this.emitSymbol(this.text.slice(from, to));
  private text = "";

  private constructor(spec: TokenizerSpec) {
    this.spec = spec;
    const { pieces, types, baseSize } = spec;
    this.vocabSize = pieces.length;
    this.bosId = spec.bosId;
    this.eosId = spec.eosId;
    this.unkId = spec.unkId;
    this.padId = spec.padId;
    this.addDummyPrefix = spec.addDummyPrefix;
    this.byteOf = new Int16Array(pieces.length).fill(-1);
    this.special = new Uint8Array(pieces.length);
    this.unused = new Uint8Array(pieces.length);
    for (let id = 0; id < baseSize; id++) {
      const piece = pieces[id] as string;
      const type = types[id] as number;
      if (type === PieceType.Normal || type === PieceType.UserDefined || type === PieceType.Unused) {
        this.mergeable.set(piece, id);
      } else this.reserved.set(piece, id);
      if (type === PieceType.Unused) this.unused[id] = 1;
      if (type === PieceType.Byte) {
        const value = bytePieceValue(piece);
        this.byteOf[id] = value;
        this.byteIds[value] = id;
      }
      if (isSpecialType(type)) this.special[id] = 1;
    }
    for (let id = 0; id < baseSize; id++) {
      const type = types[id] as number;
      const piece = pieces[id] as string;
      // As in sentencepiece, a matched user-defined string resolves through the reserved map first.
      if (type === PieceType.UserDefined) this.userTrie.add(piece, this.lookup(piece));
      if (type === PieceType.UserDefined || isSpecialType(type)) this.specialTrie.add(piece, this.lookup(piece));
    }
    for (let id = baseSize; id < pieces.length; id++) {
      const piece = pieces[id] as string;
      this.addedIds.set(piece, id);
      this.special[id] = 1;
      this.specialTrie.add(piece, id);
    }
    this.hasUnused = this.unused.includes(1);
    // sentencepiece's decoder turns "▁" into " " whether or not the encoder escaped spaces.
    this.surfaces = pieces.map((p) => (p.includes(SPACE) ? p.replaceAll(SPACE, " ") : p));
    this.bigrams = new MergeBigrams(this.mergeable.keys());
    this.engine = new BpeEngine({ mergeable: this.mergeable, scores: spec.scores, unused: this.unused });
  }

  /**
   * A tokenizer from the bytes of a SentencePiece `tokenizer.model`, plus Hugging Face's added tokens
   * (`added_tokens.json`, e.g. `{ "<image>": 257152 }`): each must extend the vocabulary by the next id
   * or name an existing piece by its own id. Added tokens are special: matched only with `parseSpecial`.
   */
  static fromSentencePiece(bytes: Uint8Array, addedTokens?: Record<string, number>): Tokenizer {
    return new Tokenizer(specFromSentencePiece(bytes, addedTokens));
  }

  /**
   * A tokenizer from a GGUF file's `tokenizer.ggml.*` metadata (as written by pali's converter and
   * llama.cpp's): model "llama" (SentencePiece), tokens, scores, token types, special ids and
   * `add_space_prefix`. Byte fallback is on when the vocabulary has byte tokens, as in llama.cpp.
   */
  static fromGGUF(file: GGUFFile): Tokenizer {
    return new Tokenizer(specFromGGUF(file));
  }

  /** The id of a piece (or added token), or undefined. */
  idOf(piece: string): number | undefined {
    return this.reserved.get(piece) ?? this.mergeable.get(piece) ?? this.addedIds.get(piece);
  }

  /** The piece of an id, e.g. "▁the", "<0xE4>", "<loc0042>". */
  pieceOf(id: number): string {
    return this.spec.pieces[this.checkId(id, "id")] as string;
  }

  pieces(ids: readonly number[]): string[] {
    const list = checkIdList(ids);
    return Array.from(list, (id, i) => this.spec.pieces[this.checkId(id, `ids[${i}]`)] as string);
  }

  /** The piece type (sentencepiece's enum) of an id; added tokens report CONTROL. */
  typeOf(id: number): PieceType {
    const i = this.checkId(id, "id");
    return (i >= this.spec.baseSize ? PieceType.Control : this.spec.types[i]) as PieceType;
  }

  encode(text: string, options?: EncodeOptions): number[] {
    if (typeof text !== "string") throw invalid("string", "text", text);
    let parseSpecial = false;
    if (options !== undefined) {
      const o = expectObject(options, "options");
      if (o.parseSpecial !== undefined) parseSpecial = expectBoolean(o.parseSpecial, "options.parseSpecial");
    }
    const s = this.normalize(toWellFormed(text));
    if (s.length === 0) return [];
    const trie = parseSpecial ? this.specialTrie : this.userTrie;
    const out = this.encodeChunked(s, trie);
    return out ?? this.encodeWhole(s, trie);
  }

  /** Text of `ids`: byte pieces fused into UTF-8 (invalid bytes → U+FFFD each, as sentencepiece does), "▁" → " ". */
  decode(ids: readonly number[], options?: DecodeOptions): string {
    const list = checkIdList(ids);
    const decoder = this.createStreamDecoder(options);
    let text = "";
    for (let i = 0; i < list.length; i++) text += decoder.push(list[i] as number);
    return text + decoder.flush();
  }

  createStreamDecoder(options?: DecodeOptions): StreamDecoder {
    let keepSpecial = false;
    if (options !== undefined) {
      const o = expectObject(options, "options");
      if (o.keepSpecial !== undefined) keepSpecial = expectBoolean(o.keepSpecial, "options.keepSpecial");
    }
    const bytes: number[] = [];
    // sentencepiece strips the dummy-prefix space from the first piece, only before any text.
    const stripBosSpace = this.spec.addDummyPrefix || this.spec.removeExtraWhitespaces;
    let textEmpty = true;
    let bosSpaceSeen = false;
    let bosSpace = true;
    const flushBytes = (final: boolean): string => {
      if (bytes.length === 0) return "";
      const { text, consumed } = decodeBytes(bytes, final);
      bytes.splice(0, consumed);
      if (text.length > 0) textEmpty = false;
      return text;
    };
    return {
      push: (id: number): string => {
        const i = this.checkId(id, "id");
        const byte = this.byteOf[i] as number;
        if (byte >= 0) {
          bytes.push(byte);
          return flushBytes(false);
        }
        let text = flushBytes(true);
        if (stripBosSpace) {
          if (bosSpaceSeen || !textEmpty) bosSpace = false;
          bosSpaceSeen = false;
        }
        if (this.special[i]) return keepSpecial ? text + (this.spec.pieces[i] as string) : text;
        let surface = this.surfaces[i] as string;
        if (stripBosSpace && bosSpace && (this.spec.pieces[i] as string).startsWith(SPACE)) {
          surface = surface.slice(1);
          // with remove_extra_whitespaces, every leading space goes, not just the first
          bosSpaceSeen = !this.spec.removeExtraWhitespaces;
        }
        if (surface.length > 0) textEmpty = false;
        text += surface;
        return text;
      },
      flush: (): string => flushBytes(true),
    };
  }

  /** sentencepiece's Normalizer for an identity rule: whitespace handling and the dummy prefix only. */
  private normalize(text: string): string {
    const { removeExtraWhitespaces, escapeWhitespaces, addDummyPrefix } = this.spec;
    let s = removeExtraWhitespaces ? text.replace(LEADING_SPACES, "") : text;
    if (s.length === 0) return s;
    if (removeExtraWhitespaces) s = s.replace(SPACE_RUNS, " ");
    const space = escapeWhitespaces ? SPACE : " ";
    if (escapeWhitespaces && s.includes(" ")) s = s.replaceAll(" ", SPACE);
    if (addDummyPrefix) s = space + s;
    if (removeExtraWhitespaces) {
      let end = s.length;
      while (end > 0 && s[end - 1] === space) end--;
      s = s.slice(0, end);
    }
    return s;
  }

  private checkId(id: number, name: string): number {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw invalid(`integer between 0 and ${this.vocabSize - 1}`, name, id);
    }
    return id;
  }

  /** sentencepiece's PieceToId: the reserved map first, then the normal pieces, else <unk>. */
  private lookup(piece: string): number {
    return this.reserved.get(piece) ?? this.mergeable.get(piece) ?? this.spec.unkId;
  }

  /**
   * Splits at atomic pieces, then at boundaries no merge can cross (see MergeBigrams), and runs BPE on
   * each chunk. Returns undefined in the one case where chunks are not independent: a model with UNUSED
   * pieces where one such piece was formed in two different ways (sentencepiece resegments it by the
   * last way it saw, over the whole text); the caller then runs BPE over the whole text instead.
   */
  private encodeChunked(s: string, trie: PieceTrie): number[] | undefined {
    this.text = s;
    this.out = [];
    this.prevUnk = false;
    this.revMerge = this.hasUnused ? { splits: new Map(), ambiguous: false } : null;
    const first = trie.first;
    const n = s.length;
    let segment = 0;
    for (let i = 0; i < n; ) {
      const c = s.charCodeAt(i);
      if (first[c]) {
        const length = trie.match(s, i);
        if (length > 0) {
          if (segment < i) this.encodeSegment(segment, i);
          this.out.push(trie.matchId);
          this.prevUnk = false;
          i += length;
          segment = i;
          continue;
        }
      }
      i += c >= 0xd800 && c < 0xdc00 ? 2 : 1;
    }
    if (segment < n) this.encodeSegment(segment, n);
    const out = this.out;
    const ambiguous = this.revMerge?.ambiguous ?? false;
    this.out = [];
    this.text = "";
    return ambiguous ? undefined : out;
  }

  private encodeSegment(from: number, to: number): void {
    const s = this.text;
    const bigrams = this.bigrams;
    let chunk = from;
    let prev = -1;
    for (let i = from; i < to; ) {
      const c = s.charCodeAt(i);
      let cp = c;
      let width = 1;
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < to) {
        cp = s.codePointAt(i) as number;
        width = 2;
      }
      const index = bigrams.indexOf(cp);
      if (i > from && !bigrams.joins(prev, index)) {
        this.encodeChunk(chunk, i);
        chunk = i;
      }
      prev = index;
      i += width;
    }
    this.encodeChunk(chunk, to);
  }

  private encodeChunk(from: number, to: number): void {
    const s = this.text;
    const length = to - from;
    if (length === 1 || (length === 2 && s.codePointAt(from) !== s.charCodeAt(from))) {
      this.emitSymbol(s.slice(from, to));
      return;
    }
    // Cached ids are only valid when nothing carries over between chunks (no <unk> runs, no rev_merge).
    const cacheable = length <= CACHE_MAX_CHUNK && this.spec.byteFallback && !this.hasUnused;
    let key = "";
    let mark = 0;
    if (cacheable) {
      key = s.slice(from, to);
      const hit = this.cache.get(key);
      if (hit !== undefined) {
        for (let i = 0; i < hit.length; i++) this.out.push(hit[i] as number);
        return;
      }
      mark = this.out.length;
    }
    this.engine.reset(s, length, this.revMerge);
    this.engine.addCodePoints(from, to);
    this.engine.run(this.emitRange);
    if (cacheable) {
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
      this.cache.set(key, this.out.slice(mark));
    }
  }

  /** One BPE result: resegmented if UNUSED, byte fallback if unknown (sentencepiece's Encode + PopulateSentencePieceText). */
  private emitSymbol(piece: string): void {
    const id = this.lookup(piece);
    if (this.unused[id] && this.revMerge) {
      const split = this.revMerge.splits.get(piece);
      if (split) {
        this.emitSymbol(split[0]);
        this.emitSymbol(split[1]);
        return;
      }
    }
    if (id !== this.spec.unkId) {
      this.out.push(id);
      this.prevUnk = false;
      return;
    }
    if (this.spec.byteFallback) {
      const out = this.out;
      const byteIds = this.byteIds;
      for (const ch of piece) forEachUtf8Byte(ch.codePointAt(0) as number, (b) => out.push(byteIds[b] as number));
    } else if (!this.prevUnk) {
      // sentencepiece merges a run of unknown characters into one <unk>.
      this.out.push(id);
    }
    this.prevUnk = true;
  }

  /** BPE over the whole text in one run, atomic pieces frozen: exactly sentencepiece's procedure. */
  private encodeWhole(s: string, trie: PieceTrie): number[] {
    this.text = s;
    this.out = [];
    this.prevUnk = false;
    this.revMerge = this.hasUnused ? { splits: new Map(), ambiguous: false } : null;
    const atomic = new Map<number, number>();
    this.engine.reset(s, s.length, this.revMerge);
    for (let i = 0; i < s.length; ) {
      const c = s.charCodeAt(i);
      const length = trie.first[c] ? trie.match(s, i) : 0;
      if (length > 0) {
        atomic.set(i, trie.matchId);
        this.engine.addSymbol(i, i + length, true);
        i += length;
      } else {
        const width = c >= 0xd800 && c < 0xdc00 && i + 1 < s.length ? 2 : 1;
        this.engine.addSymbol(i, i + width, false);
        i += width;
      }
    }
    this.engine.run((from, to) => {
      const id = atomic.get(from);
      if (id === undefined) this.emitSymbol(s.slice(from, to));
      else {
        this.out.push(id);
        this.prevUnk = false;
      }
    });
    const out = this.out;
    this.out = [];
    this.text = "";
    return out;
  }
}

function checkIdList(ids: readonly number[]): ArrayLike<number> {
  if (!Array.isArray(ids) && !(ids instanceof Int32Array) && !(ids instanceof Uint32Array)) {
    throw invalid("array of token ids", "ids", ids);
  }
  return ids;
}

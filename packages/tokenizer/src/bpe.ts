/**
 * The merge loop of sentencepiece's BPE model (bpe_model.cc, Model::SampleEncode without dropout), on
 * typed arrays: symbols in a doubly linked list, candidate pairs in a binary heap ordered by piece score
 * (highest first), then by the left symbol's position (leftmost first). A popped pair whose symbols have
 * changed since it was pushed is stale and skipped, exactly as sentencepiece checks it (by length), so
 * the merge order, and therefore every id, is sentencepiece's. O(n log n) in the number of symbols.
 */

/** What the merge loop needs from the vocabulary. */
export interface BpeVocab {
  /** NORMAL, USER_DEFINED and UNUSED pieces (sentencepiece's `pieces_`): the only strings a merge can make */
  readonly mergeable: ReadonlyMap<string, number>;
  readonly scores: Float32Array;
  /** 1 for UNUSED pieces, which are merged through and then split again (sentencepiece's rev_merge) */
  readonly unused: Uint8Array;
}

/** Per-call record of how UNUSED pieces were formed: piece → [left, right] of the last push, as sentencepiece keeps it. */
export interface RevMerge {
  splits: Map<string, [string, string]>;
  /** set when one UNUSED piece was pushed with two different splits */
  ambiguous: boolean;
}

function grow<T extends Int32Array | Float64Array | Uint8Array>(array: T, size: number): T {
  if (array.length >= size) return array;
  const next = new (array.constructor as new (n: number) => T)(Math.max(size, array.length * 2));
  next.set(array);
  return next;
}

export class BpeEngine {
  // Symbols: [start, end) code-unit ranges in the text; a merged-away symbol has start === end.
  private start = new Int32Array(64);
  private end = new Int32Array(64);
  private prev = new Int32Array(64);
  private next = new Int32Array(64);
  private frozen = new Uint8Array(64);
  private count = 0;
  // The heap, as parallel arrays.
  private hScore = new Float64Array(64);
  private hLeft = new Int32Array(64);
  private hRight = new Int32Array(64);
  private hSize = new Int32Array(64);
  private heapLength = 0;
  private text = "";
  private revMerge: RevMerge | null = null;

  constructor(private readonly vocab: BpeVocab) {}

  /** Starts a run with room for `capacity` symbols. */
  reset(text: string, capacity: number, revMerge: RevMerge | null): void {
    this.text = text;
    this.revMerge = revMerge;
    this.count = 0;
    this.heapLength = 0;
    if (this.start.length < capacity) {
      this.start = grow(this.start, capacity);
      this.end = grow(this.end, capacity);
      this.prev = grow(this.prev, capacity);
      this.next = grow(this.next, capacity);
      this.frozen = grow(this.frozen, capacity);
    }
  }

  /** Appends the symbol text[from, to); frozen symbols (user-defined pieces) never merge. */
  addSymbol(from: number, to: number, frozen: boolean): void {
    const i = this.count++;
    this.start[i] = from;
    this.end[i] = to;
    this.prev[i] = i - 1;
    this.next[i] = i + 1;
    this.frozen[i] = frozen ? 1 : 0;
  }

  /** Appends every code point of text[from, to) as a symbol. */
  addCodePoints(from: number, to: number): void {
    const text = this.text;
    for (let i = from; i < to; ) {
      const c = text.charCodeAt(i);
      const width = c >= 0xd800 && c < 0xdc00 && i + 1 < to ? 2 : 1;
      this.addSymbol(i, i + width, false);
      i += width;
    }
  }

  /**
   * Merges until no adjacent pair forms a piece. Calls `emit(from, to)` for each final symbol, in order.
   */
  run(emit: (from: number, to: number) => void): void {
    const n = this.count;
    if (n === 0) return;
    this.next[n - 1] = -1;
    // At most n - 1 initial pairs and two new pairs per merge.
    const capacity = 3 * n + 1;
    if (this.hScore.length < capacity) {
      this.hScore = grow(this.hScore, capacity);
      this.hLeft = grow(this.hLeft, capacity);
      this.hRight = grow(this.hRight, capacity);
      this.hSize = grow(this.hSize, capacity);
    }
    for (let i = 1; i < n; i++) this.maybeAddPair(i - 1, i);
    const { start, end, prev, next } = this;
    while (this.heapLength > 0) {
      const left = this.hLeft[0] as number;
      const right = this.hRight[0] as number;
      const size = this.hSize[0] as number;
      this.pop();
      const leftLength = (end[left] as number) - (start[left] as number);
      const rightLength = (end[right] as number) - (start[right] as number);
      if (leftLength === 0 || rightLength === 0 || leftLength + rightLength !== size) continue;
      end[left] = end[right] as number;
      const after = next[right] as number;
      next[left] = after;
      if (after >= 0) prev[after] = left;
      end[right] = start[right] as number;
      this.maybeAddPair(prev[left] as number, left);
      this.maybeAddPair(left, after);
    }
    for (let i = 0; i !== -1; i = next[i] as number) emit(start[i] as number, end[i] as number);
  }

  private maybeAddPair(left: number, right: number): void {
    if (left < 0 || right < 0 || this.frozen[left] || this.frozen[right]) return;
    const from = this.start[left] as number;
    const middle = this.end[left] as number;
    const to = this.end[right] as number;
    const piece = this.text.slice(from, to);
    const id = this.vocab.mergeable.get(piece);
    if (id === undefined) return;
    this.push(this.vocab.scores[id] as number, left, right, to - from);
    if (this.vocab.unused[id] && this.revMerge) {
      const leftText = this.text.slice(from, middle);
      const seen = this.revMerge.splits.get(piece);
      if (seen && seen[0] !== leftText) this.revMerge.ambiguous = true;
      this.revMerge.splits.set(piece, [leftText, this.text.slice(middle, to)]);
    }
  }

  /** Whether heap entry a comes out before b: higher score first, then the leftmost pair. */
  private before(a: number, b: number): boolean {
    const sa = this.hScore[a] as number;
    const sb = this.hScore[b] as number;
    return sa > sb || (sa === sb && (this.hLeft[a] as number) < (this.hLeft[b] as number));
  }

  private swap(a: number, b: number): void {
    const { hScore, hLeft, hRight, hSize } = this;
    const s = hScore[a] as number;
    hScore[a] = hScore[b] as number;
    hScore[b] = s;
    const l = hLeft[a] as number;
    hLeft[a] = hLeft[b] as number;
    hLeft[b] = l;
    const r = hRight[a] as number;
    hRight[a] = hRight[b] as number;
    hRight[b] = r;
    const z = hSize[a] as number;
    hSize[a] = hSize[b] as number;
    hSize[b] = z;
  }

  private push(score: number, left: number, right: number, size: number): void {
    let i = this.heapLength++;
    this.hScore[i] = score;
    this.hLeft[i] = left;
    this.hRight[i] = right;
    this.hSize[i] = size;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private pop(): void {
    const last = --this.heapLength;
    if (last === 0) return;
    this.swap(0, last);
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= last) break;
      const r = l + 1;
      const child = r < last && this.before(r, l) ? r : l;
      if (!this.before(child, i)) break;
      this.swap(child, i);
      i = child;
    }
  }
}

/** Lookup structures built once per vocabulary: a prefix trie for atomic pieces and the merge-bigram index. */

/**
 * Longest-prefix matching over a set of pieces, on UTF-16 code units (equivalent to sentencepiece's
 * byte trie for well-formed text: a piece always ends on a whole code point).
 */
export class PieceTrie {
  private readonly children: Map<number, number>[] = [new Map()];
  private readonly ids: number[] = [-1];
  /** 1 for every code unit that starts some piece: a cheap test before walking the trie */
  readonly first = new Uint8Array(65536);
  /** the id of the piece found by the last successful match() */
  matchId = -1;
  size = 0;

  /** Adds a piece; the first id given for a string wins. */
  add(piece: string, id: number): void {
    let node = 0;
    for (let i = 0; i < piece.length; i++) {
      const c = piece.charCodeAt(i);
      const children = this.children[node] as Map<number, number>;
      let child = children.get(c);
      if (child === undefined) {
        child = this.ids.length;
        children.set(c, child);
        this.children.push(new Map());
        this.ids.push(-1);
      }
      node = child;
    }
    if (this.ids[node] === -1) {
      this.ids[node] = id;
      this.size++;
    }
    this.first[piece.charCodeAt(0)] = 1;
  }

  /**
   * Length of the longest piece that starts at text[at], or 0. Like sentencepiece's PrefixMatcher, only
   * the 64 shortest matches are considered (that limit never binds for real vocabularies).
   */
  match(text: string, at: number): number {
    let node = 0;
    let best = 0;
    let found = 0;
    for (let i = at; i < text.length; i++) {
      const child = (this.children[node] as Map<number, number>).get(text.charCodeAt(i));
      if (child === undefined) break;
      node = child;
      const id = this.ids[node] as number;
      if (id >= 0) {
        best = i + 1 - at;
        this.matchId = id;
        if (++found === 64) break;
      }
    }
    return best;
  }
}

/**
 * Which adjacent code points some mergeable piece contains. A BPE merge joins two neighbouring symbols
 * into a piece that contains the characters on both sides of their boundary, so a boundary between code
 * points a and b that no piece contains as "ab" is never merged across: the text can be cut there and
 * each side encoded on its own with the same result (the merge order inside each side is unchanged,
 * because the heap order is by score, then by position, and pairs on different sides never interact).
 */
export class MergeBigrams {
  private readonly bmp = new Int32Array(65536).fill(-1);
  private readonly astral = new Map<number, number>();
  private readonly pairs = new Set<number>();
  private readonly stride: number;

  constructor(pieces: Iterable<string>) {
    const multi: number[][] = [];
    let count = 0;
    for (const piece of pieces) {
      if (piece.length < 2) continue;
      const cps = Array.from(piece, (ch) => ch.codePointAt(0) as number);
      if (cps.length < 2) continue;
      multi.push(cps);
      for (const cp of cps) {
        if (this.indexOf(cp) < 0) {
          if (cp < 0x10000) this.bmp[cp] = count;
          else this.astral.set(cp, count);
          count++;
        }
      }
    }
    this.stride = count;
    for (const cps of multi) {
      for (let i = 1; i < cps.length; i++)
        this.pairs.add(this.indexOf(cps[i - 1] as number) * count + this.indexOf(cps[i] as number));
    }
  }

  /** Dense index of a code point that occurs in a multi-character piece, else -1. */
  indexOf(cp: number): number {
    return cp < 0x10000 ? (this.bmp[cp] as number) : (this.astral.get(cp) ?? -1);
  }

  /** Whether some piece contains the code points with dense indices a then b. */
  joins(a: number, b: number): boolean {
    return a >= 0 && b >= 0 && this.pairs.has(a * this.stride + b);
  }
}

/**
 * UTF-8 helpers that reproduce sentencepiece's own rules, which differ from TextDecoder's: an invalid or
 * truncated sequence becomes one U+FFFD per byte (sentencepiece consumes a single byte on error), not one
 * per maximal subpart.
 */

const REPLACEMENT = "\uFFFD";

function isTrail(b: number): boolean {
  return (b & 0xc0) === 0x80;
}

/** Bytes a lead byte announces, or 0 when it cannot start a sequence. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if ((lead & 0xe0) === 0xc0) return 2;
  if ((lead & 0xf0) === 0xe0) return 3;
  if ((lead & 0xf8) === 0xf0) return 4;
  return 0;
}

/**
 * Decodes bytes[0..length) as sentencepiece's DecodeUTF8 loop does. With `final` false, a trailing
 * sequence that may still become valid when more bytes arrive is left alone; `consumed` says how many
 * bytes were turned into text.
 */
export function decodeBytes(bytes: readonly number[], final: boolean): { text: string; consumed: number } {
  let text = "";
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b0 = bytes[i] as number;
    const need = sequenceLength(b0);
    if (need === 1) {
      text += String.fromCharCode(b0);
      i += 1;
      continue;
    }
    if (need > 0 && n - i < need) {
      let allTrail = true;
      for (let j = i + 1; j < n; j++) allTrail &&= isTrail(bytes[j] as number);
      // A prefix of a sequence that is still possible: wait for the rest.
      if (!final && allTrail) break;
    } else if (need > 0) {
      const b1 = bytes[i + 1] as number;
      let cp = -1;
      if (need === 2) {
        if (isTrail(b1)) cp = ((b0 & 0x1f) << 6) | (b1 & 0x3f);
        if (cp < 0x80) cp = -1;
      } else if (need === 3) {
        const b2 = bytes[i + 2] as number;
        if (isTrail(b1) && isTrail(b2)) cp = ((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f);
        if (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000)) cp = -1;
      } else {
        const b2 = bytes[i + 2] as number;
        const b3 = bytes[i + 3] as number;
        if (isTrail(b1) && isTrail(b2) && isTrail(b3)) {
          cp = ((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f);
        }
        if (cp < 0x10000 || cp > 0x10ffff) cp = -1;
      }
      if (cp >= 0) {
        text += String.fromCodePoint(cp);
        i += need;
        continue;
      }
    }
    text += REPLACEMENT;
    i += 1;
  }
  return { text, consumed: i };
}

/** Pushes the UTF-8 bytes of code point `cp` through `emit`. */
export function forEachUtf8Byte(cp: number, emit: (byte: number) => void): void {
  if (cp < 0x80) emit(cp);
  else if (cp < 0x800) {
    emit(0xc0 | (cp >> 6));
    emit(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    emit(0xe0 | (cp >> 12));
    emit(0x80 | ((cp >> 6) & 0x3f));
    emit(0x80 | (cp & 0x3f));
  } else {
    emit(0xf0 | (cp >> 18));
    emit(0x80 | ((cp >> 12) & 0x3f));
    emit(0x80 | ((cp >> 6) & 0x3f));
    emit(0x80 | (cp & 0x3f));
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

type WellFormedString = string & { isWellFormed?: () => boolean; toWellFormed?: () => string };

/** `text` with every lone UTF-16 surrogate replaced by U+FFFD (String.prototype.toWellFormed where present). */
export function toWellFormed(text: string): string {
  const s = text as WellFormedString;
  if (s.isWellFormed && s.toWellFormed) return s.isWellFormed() ? text : s.toWellFormed();
  return text.replace(LONE_SURROGATE, REPLACEMENT);
}

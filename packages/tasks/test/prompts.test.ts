/** Prompt builders (SPEC §6) and the plain-text decoder: exact strings, and InvalidArgumentError for bad input. */
import { ErrorCode, InvalidArgumentError } from "@pali/base";
import { describe, expect, it } from "vitest";
import {
  answerPrompt,
  CAPTION_LANGUAGES,
  captionPrompt,
  detectPrompt,
  expectLanguage,
  normalizeLabels,
  ocrPrompt,
  PROMPT_TASKS,
  parseText,
  questionPrompt,
  segmentPrompt,
} from "../src/index.js";

function invalidArgument(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InvalidArgumentError);
  expect((caught as InvalidArgumentError).code).toBe(ErrorCode.InvalidArgument);
  expect((caught as Error).message).toMatch(message);
}

describe("caption / ocr / vqa prompts", () => {
  it("builds the documented strings", () => {
    expect(captionPrompt()).toBe("caption en");
    expect(captionPrompt({ lang: "de" })).toBe("caption de");
    expect(captionPrompt({ lang: "fil", style: "describe" })).toBe("describe fil");
    expect(captionPrompt({ style: "cap" })).toBe("cap en");
    expect(ocrPrompt()).toBe("ocr");
    expect(answerPrompt("Where is the cow standing?")).toBe("answer en Where is the cow standing?");
    expect(answerPrompt("  Wo steht die Kuh?  ", { lang: "de" })).toBe("answer de Wo steht die Kuh?");
    expect(questionPrompt("beach", { lang: "fr" })).toBe("question fr beach");
  });

  it("accepts short BCP-47-ish codes and every caption language", () => {
    expect(CAPTION_LANGUAGES).toHaveLength(35);
    for (const lang of CAPTION_LANGUAGES) expect(captionPrompt({ lang })).toBe(`caption ${lang}`);
    expect(captionPrompt({ lang: "pt-BR" })).toBe("caption pt-BR");
    expect(captionPrompt({ lang: "zh_Hans" })).toBe("caption zh_Hans");
    expect(expectLanguage("quz")).toBe("quz");
  });

  it("rejects malformed language codes with a fix", () => {
    for (const lang of ["English", "EN", "e", "en-", "en US", "", "abcd", "en-US-x"]) {
      invalidArgument(() => captionPrompt({ lang }), /language code such as "en"/);
    }
    invalidArgument(() => answerPrompt("why?", { lang: "english" }), /options\.lang/);
    invalidArgument(() => captionPrompt({ lang: 5 as unknown as string }), /Expected string for options\.lang but received 5/);
    invalidArgument(() => captionPrompt({ style: "long" as "cap" }), /one of caption, cap, describe for options\.style/);
    invalidArgument(() => captionPrompt("en" as unknown as object), /Expected object for options/);
  });

  it("rejects empty or multi-line questions and answers", () => {
    invalidArgument(() => answerPrompt(""), /non-empty text for question/);
    invalidArgument(() => answerPrompt("   \t "), /non-empty text for question/);
    invalidArgument(() => answerPrompt("what is\nthis?"), /line break/);
    invalidArgument(() => questionPrompt(""), /non-empty text for answer/);
    invalidArgument(() => answerPrompt(undefined as unknown as string), /Expected string for question but received undefined/);
  });

  it("documents which checkpoints each prompt is for", () => {
    expect(PROMPT_TASKS.answer.template).toBe("answer {lang} {question}");
    expect(
      Object.entries(PROMPT_TASKS)
        .filter(([, t]) => t.ptOnlyInOneDocRevision)
        .map(([task]) => task),
    ).toEqual(["cap", "describe", "ocr", "question"]);
  });
});

describe("detect / segment prompts", () => {
  it("joins trimmed labels with ' ; '", () => {
    expect(detectPrompt("shoe")).toBe("detect shoe");
    expect(detectPrompt(["cat", " traffic light ", "猫", "кошка"])).toBe("detect cat ; traffic light ; 猫 ; кошка");
    expect(segmentPrompt("the cat on the left")).toBe("segment the cat on the left");
    expect(segmentPrompt(["cat", "dog"])).toBe("segment cat ; dog");
    expect(normalizeLabels(["  a b  ", "c"])).toEqual(["a b", "c"]);
  });

  it("rejects missing, empty and reserved-character labels", () => {
    invalidArgument(() => detectPrompt([]), /at least one label for detect/);
    invalidArgument(() => segmentPrompt([]), /at least one label for segment/);
    invalidArgument(() => detectPrompt(""), /non-empty label for labels/);
    invalidArgument(() => detectPrompt(["cat", "  "]), /non-empty label for labels\[1\]/);
    invalidArgument(() => detectPrompt(["cat ; dog"]), /contains ";".*own array element/);
    invalidArgument(() => segmentPrompt("cat\ndog"), /line break/);
    invalidArgument(() => detectPrompt(["cat", "<loc0012> dog"]), /labels\[1\].*<locNNNN>\/<segNNN> token text/);
    invalidArgument(() => detectPrompt("<seg012>"), /token text/);
    invalidArgument(() => detectPrompt("a <b> c"), /"<" or ">"/);
    invalidArgument(() => detectPrompt([7 as unknown as string]), /Expected string for labels\[0\] but received 7/);
    invalidArgument(() => detectPrompt(undefined as unknown as string), /string or array of strings for labels/);
  });
});

describe("parseText", () => {
  it("strips trailing control-token text and whitespace", () => {
    expect(parseText("cow on the beach")).toBe("cow on the beach");
    expect(parseText(" beach <eos>")).toBe("beach");
    expect(parseText("beach<eos><pad><pad>")).toBe("beach");
    expect(parseText("beach<end_of_turn>\n")).toBe("beach");
    expect(parseText("")).toBe("");
    expect(parseText("a <eos> b")).toBe("a <eos> b");
    expect(
      parseText([
        { id: 10, text: "cow" },
        { id: 11, text: " on the" },
        { id: 12, text: " beach" },
        { id: 1, text: "" },
      ]),
    ).toBe("cow on the beach");
  });
});

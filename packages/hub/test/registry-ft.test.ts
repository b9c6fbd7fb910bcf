/** The fine-tuned checkpoints in the registry, the `tasks` schema, and where an installed @pali/hub reads the file. */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { defaultRegistry, PROMPT_FIELDS, parseRegistry, REGISTRY_TASKS, registryPath } from "../src/index.js";

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = resolve(packageRoot, "..", "..");
const registry = defaultRegistry();
const byName = (name: string) => registry.find((e) => e.name === name);

describe("registry location (issue #11)", () => {
  it("is registry.json at the package root, listed in the package's files", () => {
    expect(registryPath()).toBe(join(packageRoot, "registry.json"));
    const pkg = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as { files: string[] };
    expect(pkg.files).toContain("registry.json");
  });

  // An installed app: the packed tarball unpacked into node_modules/@pali/hub beside @pali/core, the built
  // module imported from there (issue #11: it looked for ../../../models/registry.json, outside the package).
  const built = join(packageRoot, "dist", "registry.js");
  it.skipIf(!existsSync(built))("is found by the packed package installed in an app's node_modules", async () => {
    const app = await mkdtemp(join(tmpdir(), "pali-hub-installed-"));
    try {
      const pack = spawnSync("npm", ["pack", "--json", "--pack-destination", app], { cwd: packageRoot, encoding: "utf8" });
      expect(pack.status, pack.stderr).toBe(0);
      const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
      expect(info?.files.map((f) => f.path)).toContain("registry.json");
      const installed = join(app, "node_modules", "@pali", "hub");
      await mkdir(installed, { recursive: true });
      const untar = spawnSync("tar", ["-xzf", join(app, info?.filename ?? ""), "-C", installed, "--strip-components=1"]);
      expect(untar.status).toBe(0);
      await symlink(join(packageRoot, "..", "core"), join(app, "node_modules", "@pali", "core"), "dir");
      const script =
        "const m = await import(process.argv[1]);" +
        "console.log(JSON.stringify({ path: m.registryPath(), count: m.defaultRegistry().length }));";
      const run = spawnSync(process.execPath, ["--input-type=module", "-e", script, join(installed, "dist", "registry.js")], {
        cwd: app,
        encoding: "utf8",
      });
      expect(run.status, run.stderr).toBe(0);
      const out = JSON.parse(run.stdout) as { path: string; count: number };
      expect(out).toEqual({ path: join(realpathSync(installed), "registry.json"), count: registry.length });
    } finally {
      await rm(app, { recursive: true, force: true });
    }
  });

  it("keeps models/registry.json as a link to the same file for docs and scripts", () => {
    expect(realpathSync(join(repoRoot, "models", "registry.json"))).toBe(realpathSync(registryPath()));
  });
});

describe("fine-tuned checkpoints", () => {
  const ft = registry.filter((e) => e.kind === "ft");
  const pg1 = ft.filter((e) => e.version === 1);

  it("lists PaliGemma 1's transfers at the resolutions Google published, 896 only for the text-heavy ones and RefCOCO", () => {
    const tasks = new Map<string, number[]>();
    for (const e of pg1) {
      const slug = e.name.replace(/^pg1-3b-ft-/, "").replace(/-\d+$/, "");
      tasks.set(slug, [...(tasks.get(slug) ?? []), e.resolution]);
    }
    const with896 = ["docvqa", "infovqa", "ocrvqa", "refcoco-seg", "stvqa", "textvqa"];
    expect([...tasks.keys()].sort()).toEqual(
      [
        "ai2d",
        "aokvqa-da",
        "aokvqa-mc",
        "chartqa",
        "coco35l",
        "cococap",
        "docvqa",
        "gqa",
        "infovqa",
        "nlvr2",
        "ocrvqa",
        "okvqa",
        "refcoco-seg",
        "rsvqa-hr",
        "rsvqa-lr",
        "scicap",
        "science-qa",
        "screen2words",
        "stvqa",
        "tallyqa",
        "textcaps",
        "textvqa",
        "vizwizvqa",
        "vqav2",
        "widgetcap",
      ].sort(),
    );
    for (const [slug, resolutions] of tasks) expect(resolutions).toEqual(with896.includes(slug) ? [224, 448, 896] : [224, 448]);
    for (const e of pg1) {
      expect(e.repo).toBe(`google/paligemma-3b-ft-${e.name.replace(/^pg1-3b-ft-/, "")}`);
      expect(e.revision).toBe("bfloat16");
      expect(e.gated).toBe(true);
    }
  });

  it("lists PaliGemma 2's DOCCI long-caption transfers", () => {
    expect(ft.filter((e) => e.version === 2).map((e) => [e.name, e.repo, e.resolution])).toEqual([
      ["pg2-3b-ft-docci-448", "google/paligemma2-3b-ft-docci-448", 448],
      ["pg2-10b-ft-docci-448", "google/paligemma2-10b-ft-docci-448", 448],
    ]);
  });

  it("records each transfer's task and training prompt", () => {
    expect(byName("pg1-3b-ft-cococap-224")?.tasks).toEqual([{ task: "caption", prompt: "caption en" }]);
    expect(byName("pg1-3b-ft-coco35l-448")?.tasks).toEqual([{ task: "caption", prompt: "caption {lang}" }]);
    expect(byName("pg1-3b-ft-vqav2-448")?.tasks).toEqual([{ task: "vqa", prompt: "answer en {question}" }]);
    // DocVQA and ChartQA were trained on the bare question
    expect(byName("pg1-3b-ft-docvqa-896")?.tasks).toEqual([{ task: "vqa", prompt: "{question}" }]);
    expect(byName("pg1-3b-ft-chartqa-224")?.tasks).toEqual([{ task: "vqa", prompt: "{question}" }]);
    // RefCOCO: the bare referring expression in, a box and a mask out
    expect(byName("pg1-3b-ft-refcoco-seg-896")?.tasks.map((t) => [t.task, t.prompt])).toEqual([
      ["segment", "{expression}"],
      ["detect", "{expression}"],
    ]);
    expect(byName("pg1-3b-ft-nlvr2-224")?.images).toBe(2);
    expect(byName("pg1-3b-ft-vqav2-224")?.images).toBeUndefined();
    expect(byName("pg1-3b-ft-science-qa-448")?.tasks[0]?.prompt).toContain("\nOptions: {choices}\n");
    for (const e of registry) {
      expect(e.tasks.length).toBeGreaterThan(0);
      for (const t of e.tasks) expect(REGISTRY_TASKS).toContain(t.task);
    }
    // mix checkpoints take every task of the mixture; pt ones the pretraining prompts
    expect(byName("pg2-10b-mix-448")?.tasks.map((t) => t.task)).toEqual(["caption", "vqa", "ocr", "detect", "segment"]);
    expect(byName("pg1-3b-pt-224")?.tasks.map((t) => t.prompt)).toContain("describe {lang}");
  });
});

describe("the tasks schema", () => {
  const base = registry[0];
  const withTasks = (tasks: unknown, extra: Record<string, unknown> = {}) => ({ models: [{ ...base, tasks, ...extra }] });

  it("rejects a missing, empty or malformed tasks field with a typed error naming it", () => {
    const bad: [unknown, RegExp][] = [
      [undefined, /models\[0\]\.tasks should be a non-empty array/],
      [[], /models\[0\]\.tasks should be a non-empty array/],
      ["caption", /models\[0\]\.tasks should be a non-empty array/],
      [["caption"], /models\[0\]\.tasks\[0\] should be an object/],
      [[{ task: "chat", prompt: "hi" }], /tasks\[0\]\.task should be one of caption, ocr, vqa/],
      [[{ task: "vqa", prompt: " " }], /tasks\[0\]\.prompt should be a non-empty string/],
      [[{ task: "vqa", prompt: "answer en {query}" }], /has \{query\}; the fields a prompt can leave open are/],
      [[{ task: "vqa", prompt: "answer en {question" }], /unmatched brace/],
      [[{ task: "vqa", prompt: "x", lang: "en" }], /unknown field lang/],
    ];
    for (const [tasks, message] of bad) {
      let error: unknown;
      try {
        parseRegistry(withTasks(tasks));
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(tasks)).toMatchObject({ code: "ERR_MODEL_FORMAT" });
      expect((error as Error).message).toMatch(message);
    }
  });

  it("checks the image count and accepts every documented field", () => {
    expect(() => parseRegistry(withTasks(base?.tasks, { images: 0 }))).toThrow(/images should be an image count/);
    expect(() => parseRegistry(withTasks(base?.tasks, { images: 2.5 }))).toThrow(/images should be an image count/);
    const prompt = PROMPT_FIELDS.map((f) => `{${f}}`).join(" ");
    const [entry] = parseRegistry(withTasks([{ task: "vqa", prompt }], { images: 2 }));
    expect(entry?.tasks).toEqual([{ task: "vqa", prompt }]);
    expect(entry?.images).toBe(2);
  });
});

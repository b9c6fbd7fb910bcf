/** The .npz/.npy reader and `convertSegVae` (big_vision's vae-oid.npz → mask-decoder-f32.gguf). */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateRawSync } from "node:zlib";
import { readGGUF, readTensorData } from "@pali/gguf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertSegVae, crc32, NpzFile, parseNpy, planMaskDecoder, readNpy } from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, "..", "..", "..", "models", "fixtures", "vqvae");
const npzPath = join(fixtures, "vae-random.npz");
const meta = JSON.parse(await readFile(join(fixtures, "expected-meta.json"), "utf8")) as {
  weights_keys: Record<string, number[]>;
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pali-seg-vae-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A .npy file: header dict padded with spaces and a newline to a multiple of 64 bytes, as numpy writes it. */
function npy(descr: string, shape: number[], data: Uint8Array, options: { fortran?: boolean; version?: 1 | 2 | 3 } = {}): Buffer {
  const version = options.version ?? 1;
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': ${options.fortran ? "True" : "False"}, 'shape': ${shapeText}, }`;
  const prefix = version === 1 ? 10 : 12;
  header += `${" ".repeat(63 - ((prefix + header.length) % 64))}\n`;
  const head = Buffer.alloc(prefix);
  head.write("\x93NUMPY", 0, "latin1");
  head[6] = version;
  if (version === 1) head.writeUInt16LE(header.length, 8);
  else head.writeUInt32LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, "latin1"), data]);
}

const f32 = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

interface ZipEntry {
  name: string;
  data: Uint8Array;
  method?: 0 | 8 | 12;
  flags?: number;
  crc?: number;
}

/** A minimal zip archive (local headers, central directory, end record). */
function zip(entries: ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const method = e.method ?? 0;
    const body = method === 8 ? deflateRawSync(e.data) : Buffer.from(e.data);
    const name = Buffer.from(e.name);
    const crc = e.crc ?? crc32(e.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(e.flags ?? 0, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(e.flags ?? 0, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(e.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

async function write(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

async function expectFormatError(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code: "ERR_MODEL_FORMAT", message: expect.stringMatching(message) });
}

describe("npz reader", () => {
  it("reads the index and arrays of numpy.savez's fixture (zip64 local headers, stored entries)", async () => {
    const npz = await NpzFile.open(npzPath);
    expect(npz.names.sort()).toEqual(Object.keys(meta.weights_keys).sort());
    expect([...npz.entries.values()].every((e) => e.method === "stored")).toBe(true);
    for (const [name, shape] of Object.entries(meta.weights_keys)) {
      const array = await npz.read(name);
      expect(array.dtype).toBe("<f4");
      expect(array.shape).toEqual(shape);
      expect(array.data.length).toBe(shape.reduce((a, b) => a * b, 1));
    }
    // the codebook is standard normal (expected-meta.json, weights_init)
    const codebook = (await npz.read("_vq_vae._embedding")).data;
    const mean = codebook.reduce((a, b) => a + b, 0) / codebook.length;
    const variance = codebook.reduce((a, b) => a + (b - mean) ** 2, 0) / codebook.length;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(variance).toBeGreaterThan(0.98);
    expect(variance).toBeLessThan(1.02);
    await expectFormatError(npz.read("decoder.99.weight"), /has no array decoder\.99\.weight/);
  });

  it("reads expected.npy", async () => {
    const expected = await readNpy(join(fixtures, "expected.npy"));
    expect(expected.shape).toEqual([8, 64, 64]);
    expect(Math.min(...expected.data)).toBeCloseTo(-0.8442664742469788, 6);
    expect(Math.max(...expected.data)).toBeCloseTo(0.6097745895385742, 6);
  });

  it("reads deflated and stored entries, .npy v1/v2/v3, and f2/f4/f8 data", async () => {
    const f8 = new Uint8Array(Float64Array.of(1.5, -2.25, 0.1).buffer);
    const f2 = new Uint8Array(Uint16Array.of(0x3c00, 0xc000, 0x3555, 0x0001).buffer); // 1, -2, 0.33325195, 2^-24
    const path = await write(
      "mixed.npz",
      zip([
        { name: "a.npy", data: npy("<f4", [2, 3], f32([1, 2, 3, 4, 5, 6])), method: 8 },
        { name: "b.npy", data: npy("<f8", [3], f8, { version: 2 }) },
        { name: "c.npy", data: npy("<f2", [2, 2], f2, { version: 3 }), method: 8 },
        { name: "scalar.npy", data: npy("<f4", [], f32([7])) },
        { name: "notes.txt", data: Buffer.from("ignored") },
      ]),
    );
    const npz = await NpzFile.open(path);
    expect(npz.names).toEqual(["a", "b", "c", "scalar"]);
    expect(npz.entries.get("a")?.method).toBe("deflated");
    expect(await npz.read("a")).toEqual({ dtype: "<f4", shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) });
    expect(await npz.read("b")).toEqual({ dtype: "<f8", shape: [3], data: Float32Array.of(1.5, -2.25, 0.1) });
    expect(await npz.read("c")).toEqual({ dtype: "<f2", shape: [2, 2], data: Float32Array.of(1, -2, 0.333251953125, 2 ** -24) });
    expect(await npz.read("scalar")).toEqual({ dtype: "<f4", shape: [], data: Float32Array.of(7) });
  });

  it("rejects damaged or unsupported archives with ERR_MODEL_FORMAT", async () => {
    const good = npy("<f4", [2], f32([1, 2]));
    await expectFormatError(
      NpzFile.open(await write("text.npz", Buffer.from("not a zip at all, just some text"))),
      /not a zip archive/,
    );
    await expectFormatError(NpzFile.open(await write("tiny.npz", Buffer.from("PK"))), /only 2 bytes/);
    const fixture = await readFile(npzPath);
    await expectFormatError(NpzFile.open(await write("cut.npz", fixture.subarray(0, fixture.length - 100))), /not a zip archive/);
    await expectFormatError(
      NpzFile.open(await write("bzip2.npz", zip([{ name: "a.npy", data: good, method: 12 }]))),
      /compression method 12/,
    );
    await expectFormatError(
      NpzFile.open(await write("encrypted.npz", zip([{ name: "a.npy", data: good, flags: 1 }]))),
      /encrypted/,
    );

    // a central directory that points past the end of the file
    const badCd = zip([{ name: "a.npy", data: good }]);
    badCd.writeUInt32LE(0x7fffffff, badCd.length - 6);
    await expectFormatError(NpzFile.open(await write("bad-cd.npz", badCd)), /central directory .* lies outside the file/);
    // an entry that claims more bytes than the file holds
    const long = zip([{ name: "a.npy", data: good }]);
    const cdAt = long.readUInt32LE(long.length - 6);
    long.writeUInt32LE(1_000_000, cdAt + 20);
    long.writeUInt32LE(1_000_000, cdAt + 24);
    await expectFormatError(NpzFile.open(await write("long.npz", long)), /runs past the end/);
    // a local header that does not match the central directory
    const renamed = zip([{ name: "a.npy", data: good }]);
    renamed.write("b", 30, "latin1");
    await expectFormatError(NpzFile.open(await write("renamed.npz", renamed)), /local header of a\.npy names "b\.npy"/);
    // damaged data: CRC mismatch, and a deflate stream that does not inflate
    const flipped = await NpzFile.open(await write("crc.npz", zip([{ name: "a.npy", data: good, crc: 1234 }])));
    await expectFormatError(flipped.read("a"), /CRC/);
    const broken = zip([{ name: "a.npy", data: good, method: 8 }]);
    broken.fill(0xff, 30 + 5, 30 + 5 + 8);
    await expectFormatError(
      (await NpzFile.open(await write("inflate.npz", broken))).read("a"),
      /does not inflate|CRC|bytes, its header says/,
    );
    // a deflate stream that inflates to more than its entry claims: stopped at the claimed size
    const bomb = zip([{ name: "a.npy", data: npy("<f4", [4096], new Uint8Array(4 * 4096)), method: 8 }]);
    const bombCd = bomb.readUInt32LE(bomb.length - 6);
    bomb.writeUInt32LE(100, bombCd + 24);
    await expectFormatError(
      (await NpzFile.open(await write("bomb.npz", bomb))).read("a"),
      /does not inflate|bytes, its header says 100/,
    );
    // twice the same array
    const twice = zip([
      { name: "a.npy", data: good },
      { name: "a.npy", data: good },
    ]);
    await expectFormatError(NpzFile.open(await write("twice.npz", twice)), /array a appears twice/);
  });

  it("rejects .npy data it cannot read exactly with ERR_MODEL_FORMAT", () => {
    const data = f32([1, 2, 3, 4]);
    const parse = (bytes: Uint8Array) => () => parseNpy(bytes, "test.npy");
    const fails = (bytes: Uint8Array, message: RegExp) =>
      expect(parse(bytes)).toThrow(
        expect.objectContaining({ code: "ERR_MODEL_FORMAT", message: expect.stringMatching(message) }),
      );
    fails(Buffer.from("PK\x03\x04 not an npy file"), /no \.npy magic/);
    fails(npy("<f4", [2, 2], data, { fortran: true }), /Fortran-order/);
    fails(npy(">f4", [2, 2], data), /dtype >f4 is not supported/);
    fails(npy("<i4", [2, 2], data), /dtype <i4 is not supported/);
    fails(npy("toString", [2, 2], data), /dtype toString is not supported/);
    fails(npy("<f4", [2, 3], data), /needs 24 bytes of data but 16 follow/);
    fails(npy("<f4", [1], data), /needs 4 bytes of data but 16 follow/);
    fails(npy("<f4", [2, 2], data).subarray(0, 40), /header claims 118 bytes but 30 follow/);
    const v4 = npy("<f4", [2, 2], data);
    v4[6] = 4;
    fails(v4, /version 4\.0 is not supported/);
    const structured = Buffer.from(
      npy("<f4", [2, 2], data).toString("latin1").replace("'descr': '<f4'", "'descr': [('a','<f4')]"),
      "latin1",
    );
    fails(structured, /not a plain array header/);
    const extra = Buffer.from(npy("<f4", [2, 2], data).toString("latin1").replace("'shape'", "'other': 1, 'shape'"), "latin1");
    fails(extra, /not a plain array header/);
    const negative = Buffer.from(npy("<f4", [2, 2], data).toString("latin1").replace("(2, 2)", "(2, -2)"), "latin1");
    fails(negative, /not a plain array header/);
    expect(parseNpy(npy("<f4", [2, 2], data), "ok.npy").data).toEqual(Float32Array.of(1, 2, 3, 4));
  });
});

describe("convertSegVae", () => {
  it("writes the codebook and decoder of the fixture as mask-decoder-f32.gguf", async () => {
    const out = join(dir, "out");
    await mkdir(out);
    const result = await convertSegVae(npzPath, out);
    expect(result).toEqual({ path: join(out, "mask-decoder-f32.gguf"), codebookSize: 128, embeddingLength: 512, tensors: 25 });
    const gguf = await readGGUF(result.path);
    const value = (key: string) => gguf.metadata.get(key)?.value;
    expect(value("general.architecture")).toBe("paligemma-mask-decoder");
    expect(value("general.name")).toBe("vae-random");
    expect(value("paligemma.mask.codebook_size")).toBe(128);
    expect(value("paligemma.mask.embedding_length")).toBe(512);
    expect(value("paligemma.mask.channels")).toBe(128);
    expect(value("paligemma.mask.res_block_count")).toBe(2);
    expect(value("paligemma.mask.upsample_count")).toBe(4);
    expect(value("paligemma.mask.grid_size")).toBe(4);
    expect(value("paligemma.mask.mask_size")).toBe(64);
    const plan = planMaskDecoder(512, 128);
    expect(gguf.tensors.map((t) => t.name)).toEqual(plan.map((t) => t.name));
    const npz = await NpzFile.open(npzPath);
    for (const t of gguf.tensors) {
      const source = plan.find((p) => p.name === t.name);
      expect(t.type.name).toBe("f32");
      expect(t.shape).toEqual([...(meta.weights_keys[source?.source as string] as number[])].reverse());
      const bytes = await readTensorData(gguf, t);
      const array = await npz.read(source?.source as string);
      expect(Buffer.compare(bytes, Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength))).toBe(0);
    }
    expect(gguf.tensors.find((t) => t.name === "mask.dec.up.0.weight")?.shape).toEqual([4, 4, 128, 128]);
    expect(gguf.tensors.find((t) => t.name === "mask.dec.up.1.weight")?.shape).toEqual([4, 4, 64, 128]);
    expect(gguf.tensors.find((t) => t.name === "mask.dec.conv_out.weight")?.shape).toEqual([1, 1, 16, 1]);

    await expect(convertSegVae(npzPath, out)).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
      message: expect.stringMatching(/already exists; pass --force/),
    });
    await expect(convertSegVae(npzPath, out, { force: true })).resolves.toMatchObject({ tensors: 25 });
    expect(await readdir(out)).toEqual(["mask-decoder-f32.gguf"]);
  });

  it("rejects inputs that are not big_vision's VAE, writing nothing", async () => {
    const out = join(dir, "out-bad");
    await mkdir(out);
    const fixture = await NpzFile.open(npzPath);
    const entries = async (drop: string[], change: Record<string, Uint8Array> = {}) => {
      const list: ZipEntry[] = [];
      for (const name of fixture.names) {
        if (drop.includes(name)) continue;
        const a = await fixture.read(name);
        list.push({ name: `${name}.npy`, data: change[name] ?? npy("<f4", a.shape, new Uint8Array(a.data.buffer)) });
      }
      return list;
    };
    await expectFormatError(
      convertSegVae(await write("no-dec.npz", zip(await entries(["decoder.10.bias"]))), out),
      /has no array decoder\.10\.bias/,
    );
    await expectFormatError(
      convertSegVae(await write("no-codebook.npz", zip(await entries(["_vq_vae._embedding"]))), out),
      /no _vq_vae\._embedding/,
    );
    const reshaped = await entries([], { "decoder.6.weight": npy("<f4", [64, 128, 4, 4], new Uint8Array(128 * 64 * 16 * 4)) });
    await expectFormatError(
      convertSegVae(await write("shape.npz", zip(reshaped)), out),
      /decoder\.6\.weight has shape \(64, 128, 4, 4\), expected \(128, 64, 4, 4\)/,
    );
    const small = await entries([], { "_vq_vae._embedding": npy("<f4", [64, 512], new Uint8Array(64 * 512 * 4)) });
    await expectFormatError(convertSegVae(await write("codebook.npz", zip(small)), out), /expected \(128, D\)/);
    const extra = [...(await entries([])), { name: "decoder.14.weight.npy", data: npy("<f4", [1], f32([1])) }];
    await expectFormatError(
      convertSegVae(await write("extra.npz", zip(extra)), out),
      /unexpected decoder array decoder\.14\.weight/,
    );
    expect(await readdir(out)).toEqual([]);
    await expect(convertSegVae(npzPath, join(dir, "missing"))).rejects.toMatchObject({ code: "ERR_IO" });
    await expect(convertSegVae(join(dir, "missing.npz"), out)).rejects.toMatchObject({ code: "ERR_IO" });
    await expect(convertSegVae("", out)).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
  });

  it("stops when aborted", async () => {
    const out = join(dir, "out-abort");
    await mkdir(out);
    const controller = new AbortController();
    controller.abort();
    await expect(convertSegVae(npzPath, out, { signal: controller.signal })).rejects.toMatchObject({ code: "ERR_ABORTED" });
    expect(await readdir(out)).toEqual([]);
  });
});

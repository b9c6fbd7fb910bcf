/** A binary mask as a PNG data URL (white = the object), for clients that would rather not decode RLE. */
import sharp from "sharp";

export async function maskPng(binary: Uint8Array, width: number, height: number): Promise<string> {
  const grey = Buffer.alloc(binary.length);
  for (let i = 0; i < binary.length; i++) grey[i] = binary[i] === 0 ? 0 : 255;
  const png = await sharp(grey, { raw: { width, height, channels: 1 } })
    .toColourspace("b-w")
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString("base64")}`;
}

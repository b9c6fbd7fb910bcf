/**
 * multipart/form-data for the task endpoints: the file field `image` is the upload, every other field
 * becomes a body property, converted to the type the route's JSON schema asks for, so that one schema
 * validates JSON and form requests alike.
 */
import multipart from "@fastify/multipart";
import { InvalidArgumentError } from "@pali/core";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { stateOf } from "./limits.js";

type PropertySchema = { type?: string | string[]; anyOf?: PropertySchema[] };

function typesOf(schema: PropertySchema | undefined): string[] {
  if (!schema) return [];
  return [...(schema.type === undefined ? [] : [schema.type].flat()), ...(schema.anyOf ?? []).flatMap(typesOf)];
}

const numberText = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/** A form field's text as the type its schema wants; left as text (and refused by the schema) if it is not one. */
function convert(value: string, types: string[]): unknown {
  if (types.length === 0 || types.includes("string")) return value;
  if (types.includes("boolean")) {
    if (value === "true" || value === "on" || value === "1") return true;
    if (value === "false" || value === "off" || value === "0") return false;
  }
  if ((types.includes("integer") || types.includes("number")) && numberText.test(value.trim())) return Number(value);
  return value;
}

export async function registerMultipart(app: FastifyInstance, fileSize: number): Promise<void> {
  await app.register(multipart, {
    attachFieldsToBody: "keyValues",
    limits: { fileSize, files: 1, fields: 32, parts: 33, fieldSize: 1024 * 1024 },
    async onFile(part) {
      if (part.fieldname !== "image")
        throw new InvalidArgumentError(`Expected the image in the file field "image" but received a file in "${part.fieldname}"`);
      stateOf(this).upload = { filename: part.filename, bytes: await part.toBuffer() };
    },
  });
  // After @fastify/multipart's own preValidation hook has turned the parts into a body.
  app.addHook("preValidation", async (request: FastifyRequest) => {
    if (!request.isMultipart() || typeof request.body !== "object" || request.body === null) return;
    const schema = request.routeOptions.schema?.body as { properties?: Record<string, PropertySchema> } | undefined;
    const fields = request.body as Record<string, unknown>;
    for (const [key, value] of Object.entries(fields)) {
      // The file itself is in the request state (onFile), not a body property.
      if (Buffer.isBuffer(value)) delete fields[key];
      else if (typeof value === "string") fields[key] = convert(value, typesOf(schema?.properties?.[key]));
    }
  });
}

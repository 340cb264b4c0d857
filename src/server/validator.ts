/**
 * The validator for plughost's routes: Fastify's own ajv compiler with one
 * change, `removeAdditional: false`, so a field a schema does not allow is a
 * 400 naming it instead of being dropped without a word. Set on plughost's
 * encapsulated context, it holds in an integrator's app whatever their ajv options.
 */
import { AjvCompiler } from '@fastify/ajv-compiler';
import type { FastifySchema, FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';

const build = AjvCompiler()({}, { customOptions: { removeAdditional: false }, plugins: [] });

export const strictValidatorCompiler: FastifySchemaCompiler<FastifySchema> = (route) => {
  const validate = build(route as Parameters<typeof build>[0]) as unknown as ((data: unknown, ctx?: unknown) => boolean) & { errors?: FastifySchemaValidationError[] | null; schemaEnv?: unknown };
  // ajv says only "must NOT have additional properties"; the reply names the field.
  const strict = Object.assign((data: unknown, ctx?: unknown) => {
    const ok = validate(data, ctx);
    strict.errors = validate.errors?.map((e) =>
      e.keyword === 'additionalProperties' ? { ...e, message: `must NOT have the unknown field "${String(e.params.additionalProperty)}"` } : e) ?? null;
    return ok;
  }, { errors: null as FastifySchemaValidationError[] | null, schemaEnv: validate.schemaEnv });
  return strict;
};

/**
 * The README's conformance snippet ("Writing a storage adapter") type-checks
 * as written under `strict`, against the package's own sources: only the
 * two helpers it leaves to the reader are declared around it.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { afterAll, expect, test } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
mkdirSync(join(root, '.tmp'), { recursive: true });
const scratch = mkdtempSync(join(root, '.tmp', 'readme-conformance-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The ts block of the README that calls storageConformance. */
function snippet(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!).find((code) => code.includes('storageConformance({'));
  if (block === undefined) throw new Error('README has no ts block calling storageConformance');
  return block;
}

/** Type errors of each piece of code, compiled strictly in one program with express-jsonstore mapped to src/. */
function typeErrors(codes: string[]): string[][] {
  const files = codes.map((code, i) => {
    const file = join(scratch, `snippet-${i}.ts`);
    writeFileSync(file, code);
    return file;
  });
  const program = ts.createProgram(files, {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts'],
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    skipLibCheck: true,
    types: ['node'],
    baseUrl: root,
    paths: { 'express-jsonstore': ['src/index.ts'], 'express-jsonstore/testing': ['src/testing/index.ts'] },
  });
  return files.map((file) =>
    ts.getPreEmitDiagnostics(program, program.getSourceFile(file)).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')),
  );
}

// The reader's own adapter: a factory taking a path, and somewhere to put the data.
const helpers = `
import type { StorageAdapter } from 'express-jsonstore';
declare function myStorage(path: string): StorageAdapter & { readonly path: string };
declare function freshPath(): string;
`;

test('the README conformance snippet compiles as written under strict; the check can fail', { timeout: 120_000 }, () => {
  const code = snippet();
  expect(code).toContain('closed.path');
  const [asWritten, broken] = typeErrors([`${code}\n${helpers}`, `${code.replace('closed.path', 'closed.folder')}\n${helpers}`]);
  expect(asWritten).toEqual([]);
  expect(broken!.join('\n')).toMatch(/Property 'folder' does not exist/);
});

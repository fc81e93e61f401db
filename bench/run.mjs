// `npm run bench`: every benchmark in bench/, one after the other.
// Pick some with `npm run bench -- http gateway`.
import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const wanted = process.argv.slice(2);
const files = (await readdir(dir)).filter((f) => f.endsWith('.bench.mjs')).sort();
for (const file of files) {
  const name = file.replace(/\.bench\.mjs$/, '');
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  console.log(`\n=== ${name} ===`);
  const { default: run } = await import(pathToFileURL(dir + file).href);
  await run();
}

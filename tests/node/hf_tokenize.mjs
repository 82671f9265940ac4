// Encodes texts with Hugging Face tokenizers (the Rust library's Node binding), for tests/test_data.cpp.
//   node hf_tokenize.mjs TOKENIZER_JSON TEXTS_JSON   (TEXTS_JSON: a JSON array of strings)
// Prints a JSON array with, per text, the ids of encode(text, add_special_tokens=False) and the ids
// with special tokens added (the post-processor's BOS).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Tokenizer } = require('tokenizers');

const [tokenizerPath, textsPath] = process.argv.slice(2);
const tokenizer = Tokenizer.fromFile(tokenizerPath);
const texts = JSON.parse(readFileSync(textsPath, 'utf8'));
const out = [];
for (const text of texts) {
  const plain = await tokenizer.encode(text, null, { addSpecialTokens: false });
  const special = await tokenizer.encode(text, null, { addSpecialTokens: true });
  out.push({ plain: Array.from(plain.getIds()), special: Array.from(special.getIds()), decoded: await tokenizer.decode(Array.from(plain.getIds()), false) });
}
console.log(JSON.stringify(out));

// The peer for `longqa data pretrain`'s tokenization: Hugging Face tokenizers (Rust, through its Node
// binding) encoding the "text" of every JSONL record, as Megatron's preprocess_data.py would.
//   node bench/hf_tokenizers_bench.mjs TOKENIZER_JSON FILE.jsonl [BATCH]
// Prints records, tokens, seconds and tokens/s. encodeBatch runs on all cores (Rayon); set
// RAYON_NUM_THREADS to bound it.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/node/package.json', import.meta.url));
const { Tokenizer } = require('tokenizers');
const [tokenizerPath, jsonlPath, batchArg] = process.argv.slice(2);
const batch = Number(batchArg || 64);
const tokenizer = Tokenizer.fromFile(tokenizerPath);
const texts = readFileSync(jsonlPath, 'utf8').split('\n').filter((l) => l.length).map((l) => JSON.parse(l).text);
const start = process.hrtime.bigint();
let tokens = 0;
for (let i = 0; i < texts.length; i += batch) {
  const encodings = await tokenizer.encodeBatch(texts.slice(i, i + batch), { addSpecialTokens: false });
  for (const e of encodings) tokens += e.getIds().length;
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
console.log(JSON.stringify({ records: texts.length, tokens, seconds, tokens_per_s: tokens / seconds }));

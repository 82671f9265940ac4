// Drives `longqa serve` with the official OpenAI Node client, unchanged. Exits non-zero on the first
// failed check. Usage: node client.mjs BASE_URL API_KEY DOCUMENT_PATH
import OpenAI from "openai";
import assert from "node:assert/strict";

const [baseURL, apiKey, documentPath] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0, timeout: 60_000 });
const greedy = { temperature: 0, seed: 1 };
const ask = (content, extra = {}) => ({ model: "any", messages: [{ role: "user", content }], ...greedy, ...extra });

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.stack || e}`);
    process.exit(1);
  }
}

async function streamed(params, signal) {
  const stream = await client.chat.completions.create({ ...params, stream: true }, { signal });
  let text = "", finish = null, role = null;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    role ??= choice.delta.role ?? null;
    text += choice.delta.content ?? "";
    finish = choice.finish_reason ?? finish;
  }
  return { text, finish, role };
}

async function metric(name) {
  const res = await fetch(`${baseURL}/metrics`, { headers: { Authorization: `Bearer ${apiKey}` } });
  const line = (await res.text()).split("\n").find((l) => l.startsWith(name + " "));
  return Number(line.split(" ")[1]);
}

await check("models", async () => {
  const models = await client.models.list();
  assert.ok(models.data.length >= 1);
  assert.equal(models.data[0].object, "model");
});

let reference;
await check("chat, not streamed", async () => {
  reference = await client.chat.completions.create(ask("Name three colours.", { max_tokens: 12 }));
  assert.equal(reference.object, "chat.completion");
  assert.equal(reference.choices[0].message.role, "assistant");
  assert.equal(typeof reference.choices[0].message.content, "string");
  assert.ok(["stop", "length"].includes(reference.choices[0].finish_reason));
  const u = reference.usage;
  assert.ok(u.prompt_tokens > 0 && u.completion_tokens > 0 && u.total_tokens === u.prompt_tokens + u.completion_tokens);
});

await check("chat, streamed: the same text as not streamed", async () => {
  const s = await streamed(ask("Name three colours.", { max_tokens: 12 }));
  assert.equal(s.role, "assistant");
  assert.equal(s.text, reference.choices[0].message.content);
  assert.equal(s.finish, reference.choices[0].finish_reason);
});

await check("8 concurrent streaming clients, no errors, no mixed output", async () => {
  const prompts = Array.from({ length: 8 }, (_, i) => `Client ${i} asks question number ${i * 7 + 3}.`);
  const expected = [];
  for (const p of prompts) expected.push((await client.chat.completions.create(ask(p, { max_tokens: 24 }))).choices[0].message.content);
  const got = await Promise.all(prompts.map((p) => streamed(ask(p, { max_tokens: 24 }))));
  got.forEach((g, i) => assert.equal(g.text, expected[i], `client ${i}`));
  assert.ok(new Set(expected).size > 1, "different prompts should give different answers");
});

await check("embeddings (the client asks for base64)", async () => {
  const e = await client.embeddings.create({ model: "any", input: ["The walrus eats clams.", "Tax law."] });
  assert.equal(e.data.length, 2);
  for (const d of e.data) {
    const norm = Math.sqrt(d.embedding.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
  }
  assert.ok(e.usage.prompt_tokens > 0);
  const f = await client.embeddings.create({ model: "any", input: "The walrus eats clams.", encoding_format: "float" });
  f.data[0].embedding.forEach((x, i) => assert.ok(Math.abs(x - e.data[0].embedding[i]) < 1e-6));
});

await check("text completion", async () => {
  const c = await client.completions.create({ model: "any", prompt: "Once upon a time", max_tokens: 5, ...greedy });
  assert.equal(c.object, "text_completion");
  assert.equal(typeof c.choices[0].text, "string");
  assert.equal(c.usage.completion_tokens <= 5, true);
});

await check("a client that disconnects cancels its generation", async () => {
  const before = await metric("longqa_cancelled_total");
  const controller = new AbortController();
  const stream = await client.chat.completions.create({ ...ask("Tell a very long story.", { max_tokens: 3500 }), stream: true },
                                                      { signal: controller.signal });
  let chunks = 0;
  try {
    for await (const _ of stream) if (++chunks === 3) controller.abort();
  } catch (e) {
    assert.ok(e.name === "AbortError" || e.constructor.name === "APIUserAbortError", String(e));
  }
  let cancelled = before;
  for (let i = 0; i < 100 && cancelled === before; ++i) {
    await new Promise((r) => setTimeout(r, 50));
    cancelled = await metric("longqa_cancelled_total");
  }
  assert.equal(cancelled, before + 1);
  assert.equal(await metric("longqa_slots_busy"), 0);
});

await check("a prompt longer than the context is a 400 with a clear message", async () => {
  await assert.rejects(client.chat.completions.create(ask("word ".repeat(6000), { max_tokens: 8 })), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.message, /exceed the context/);
    return true;
  });
});

await check("longqa extension: documents, route and citations", async () => {
  const r = await client.chat.completions.create({ ...ask("What do walruses eat?", { max_tokens: 4 }),
                                                   longqa: { mode: "auto", documents: [documentPath] } });
  assert.equal(r.longqa.route, "long");
  assert.equal(r.longqa.citations.length, 1);
  assert.equal(r.longqa.citations[0].doc, documentPath);
});

await check("the API key is enforced on every route but /health", async () => {
  const wrong = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: "wrong", maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => e.status === 401);
  await assert.rejects(wrong.chat.completions.create(ask("hi", { max_tokens: 2 })), (e) => e.status === 401);
  assert.equal((await fetch(`${baseURL}/metrics`)).status, 401);
  assert.equal((await fetch(`${baseURL}/health`)).status, 200);
});

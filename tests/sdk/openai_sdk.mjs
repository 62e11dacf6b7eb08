// openai_sdk.mjs - the official OpenAI Node SDK against Omni's HTTP front
// (only baseURL points at Omni; the provider behind it is the emulator,
// tests/fakes/provider.js).
//
//   OMNI_URL=http://127.0.0.1:PORT node tests/sdk/openai_sdk.mjs
//
// Checks chat, streamed chat, tool calls (plain and streamed),
// embeddings as floats and as base64 (the SDK's default), models.list
// and errors (status faults before a stream, a broken upstream stream).
// Prints one line per check; exits 1 on the first failure.
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const base = process.env.OMNI_URL;
if (!base) {
  console.error('FAIL: set OMNI_URL');
  process.exit(2);
}
const model = process.env.OMNI_MODEL || 'openai/gpt-4o-mini';
const client = new OpenAI({
  baseURL: `${base}/v1`,
  apiKey: process.env.OMNI_KEY || 'sk-test-client-0000',
});

const tools = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather of a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' } },
      required: ['city'],
    },
  },
}];

const user = (text) => [{ role: 'user', content: text }];

async function chat() {
  const r = await client.chat.completions.create({
    model, messages: user('hello from the sdk'),
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.content, 'Echo: hello from the sdk');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.ok(r.usage.total_tokens > 0, 'usage');
}

async function chatStream() {
  const stream = await client.chat.completions.create({
    model, messages: user('stream me these words please'), stream: true,
  });
  let text = '';
  let chunks = 0;
  let finish = null;
  for await (const c of stream) {
    assert.equal(c.object, 'chat.completion.chunk');
    chunks++;
    const ch = c.choices[0];
    if (ch && ch.delta && ch.delta.content) text += ch.delta.content;
    if (ch && ch.finish_reason) finish = ch.finish_reason;
  }
  assert.equal(text, 'Echo: stream me these words please');
  assert.ok(chunks > 3, `only ${chunks} chunks`);
  assert.equal(finish, 'stop');
}

async function toolCall() {
  const r = await client.chat.completions.create({
    model, tools, messages: user('use tool get_weather {"city":"Paris"}'),
  });
  const ch = r.choices[0];
  assert.equal(ch.finish_reason, 'tool_calls');
  const tc = ch.message.tool_calls;
  assert.equal(tc.length, 1);
  assert.equal(tc[0].type, 'function');
  assert.equal(tc[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(tc[0].function.arguments), { city: 'Paris' });
  assert.ok(tc[0].id, 'tool call id');

  // The tool's answer goes back and the model uses it.
  const r2 = await client.chat.completions.create({
    model, tools, messages: [
      ...user('use tool get_weather {"city":"Paris"}'),
      ch.message,
      { role: 'tool', tool_call_id: tc[0].id, content: 'sunny, 21 C' },
    ],
  });
  assert.equal(r2.choices[0].message.content,
    'Tool get_weather returned: sunny, 21 C');
}

async function toolCallStream() {
  const stream = await client.chat.completions.create({
    model, tools, stream: true,
    messages: user('use tool get_weather {"city":"Oslo"}'),
  });
  const calls = [];
  let finish = null;
  for await (const c of stream) {
    const ch = c.choices[0];
    if (!ch) continue;
    for (const d of ch.delta.tool_calls || []) {
      calls[d.index] = calls[d.index] || { id: '', name: '', args: '' };
      if (d.id) calls[d.index].id = d.id;
      if (d.function && d.function.name) calls[d.index].name += d.function.name;
      if (d.function && d.function.arguments)
        calls[d.index].args += d.function.arguments;
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(calls.length, 1);
  assert.equal(calls[0].name, 'get_weather');
  assert.deepEqual(JSON.parse(calls[0].args), { city: 'Oslo' });
  assert.ok(calls[0].id, 'tool call id');
}

async function embeddings() {
  const input = ['the first text', 'the second text'];
  const f = await client.embeddings.create({
    model: 'openai/text-embedding-3-small', input, encoding_format: 'float',
  });
  assert.equal(f.object, 'list');
  assert.equal(f.data.length, 2);
  for (const d of f.data) {
    assert.ok(Array.isArray(d.embedding) && d.embedding.length > 0);
    assert.ok(d.embedding.every((x) => typeof x === 'number'));
  }
  // No encoding_format: the SDK asks for base64 and decodes it.
  const b = await client.embeddings.create({
    model: 'openai/text-embedding-3-small', input,
  });
  assert.equal(b.data.length, 2);
  for (let i = 0; i < 2; i++) {
    const x = b.data[i].embedding, y = f.data[i].embedding;
    assert.ok(Array.isArray(x), 'base64 decoded to an array');
    assert.equal(x.length, y.length);
    for (let k = 0; k < x.length; k++)
      assert.ok(Math.abs(x[k] - y[k]) < 1e-6, `component ${k} differs`);
  }
}

async function models() {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes('openai/gpt-4o-mini'), `models: ${ids}`);
}

// fails(fn, status): fn rejects with an APIError of that status.
async function fails(fn, status, cls) {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `not an APIError: ${e}`);
    assert.equal(e.status, status, `status ${e.status}: ${e.message}`);
    if (cls) assert.ok(e instanceof cls, `not a ${cls.name}: ${e}`);
    assert.ok(e.error && typeof e.error.message === 'string', 'error body');
    return e;
  }
  assert.fail(`no error, want ${status}`);
}

async function errors() {
  await fails(() => client.chat.completions.create({
    model, messages: user('please fail [fault:400]'),
  }), 400, OpenAI.BadRequestError);
  await fails(() => client.chat.completions.create({
    model, messages: user('please fail [fault:429]'),
  }, { maxRetries: 0 }), 429, OpenAI.RateLimitError);
  // A stream that fails before its first chunk gets a real status.
  await fails(async () => {
    const s = await client.chat.completions.create({
      model, stream: true, messages: user('stream fails [fault:401]'),
    });
    for await (const c of s) void c;
  }, 401, OpenAI.AuthenticationError);
  // Omni's own refusals are OpenAI errors too.
  await fails(() => client.chat.completions.create({
    model: 'nosuchprovider/x', messages: user('x'),
  }), 404);
}

async function streamBroken() {
  // The upstream connection drops after a few events: the SDK sees an
  // error event inside the stream and throws.
  const s = await client.chat.completions.create({
    model, stream: true,
    messages: user('this stream will break [fault:drop] one two three four'),
  });
  let text = '';
  try {
    for await (const c of s) text += c.choices[0]?.delta?.content || '';
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `not an APIError: ${e}`);
    return;
  }
  assert.fail(`the broken stream ended cleanly with '${text}'`);
}

const checks = [
  ['chat', chat], ['chat stream', chatStream], ['tool call', toolCall],
  ['tool call stream', toolCallStream], ['embeddings', embeddings],
  ['models', models], ['errors', errors], ['broken stream', streamBroken],
];
for (const [name, fn] of checks) {
  try {
    await fn();
    console.log(`ok    ${name}`);
  } catch (e) {
    console.log(`FAIL  ${name}: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  }
}
console.log(`${checks.length} checks passed`);

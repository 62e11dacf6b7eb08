#!/usr/bin/env node
// provider.js - a loopback emulator of the OpenAI and Anthropic HTTP APIs
// for Omni's tests (node builtin modules only).
//
//   node tests/fakes/provider.js --port P [--host 127.0.0.1] [--replay DIR]
//                                [--fixtures DIR]
//
// Prints "listening PORT" on stdout once ready (--port 0 picks a free
// port).  Replies are deterministic (derived from the last user message),
// faults are injected per request (x-fake-fault header or a
// "[fault:NAME]" marker in the last user message), recorded cassettes can
// be replayed.  Everything is documented in tests/fakes/README.md.
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

// ------------------------------------------------------------ options

function parseArgs(argv) {
  const o = { port: 0, host: '127.0.0.1', replay: null, fixtures: null };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`missing value after ${a}`);
      return argv[++i];
    };
    if (a === '--port') o.port = Number(next());
    else if (a === '--host') o.host = next();
    else if (a === '--replay') o.replay = next();
    else if (a === '--fixtures') o.fixtures = next();
    else usage(`unknown option '${a}'`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535)
    usage('bad --port');
  if (!o.fixtures) {
    o.fixtures = process.env.OMNI_SHARED_DIR
      ? path.join(process.env.OMNI_SHARED_DIR, 'fixtures')
      : path.resolve(here, '../../../shared/fixtures');
  }
  return o;
}

function usage(msg) {
  process.stderr.write(`provider.js: ${msg}\n` +
    'usage: node provider.js --port P [--host H] [--replay DIR] ' +
    '[--fixtures DIR]\n');
  process.exit(2);
}

const opts = parseArgs(process.argv);

// -------------------------------------------------------------- state

let stats = { calls: 0, by_path: {} };
let faultCounts = new Map(); // "fault|route|text" -> calls seen
let replayCounts = new Map(); // "file|path" -> next interaction
let lastRequest = null;
let seq = 0;

const RETRY_AFTER_MS = 200;

function rid(prefix) {
  seq++;
  return prefix + crypto.createHash('sha256')
    .update(`${process.pid}:${seq}`).digest('hex').slice(0, 24);
}

// ------------------------------------------------------ text helpers

// Text of an OpenAI or Anthropic content value (string or parts).
function textOf(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((p) => {
    if (!p || typeof p !== 'object') return '';
    if (typeof p.text === 'string') return p.text;
    if (p.type === 'tool_result') return textOf(p.content);
    return '';
  }).filter(Boolean).join(' ');
}

// Words with their leading space: "Echo: a b" -> ["Echo:", " a", " b"].
function pieces(text) {
  const out = text.match(/\s*\S+/g) || [];
  return out.length ? out : [text];
}

function tokens(text) {
  return Math.max(1, Math.ceil(text.length / 4));
}

function promptTokens(body) {
  let n = 0;
  for (const m of body.messages || [])
    n += 4 + tokens(textOf(m.content) || JSON.stringify(m.tool_calls || ''));
  if (body.system) n += tokens(textOf(body.system));
  if (body.tools) n += tokens(JSON.stringify(body.tools));
  return n;
}

// The conversation's last turn, in either API's shape:
// {kind: 'user'|'tool', text, toolName, results: [{name, text}]}.
function lastTurn(body, api) {
  const msgs = Array.isArray(body.messages) ? body.messages : [];
  const last = msgs[msgs.length - 1];
  if (!last) return { kind: 'user', text: '' };
  if (api === 'openai' && last.role === 'tool') {
    let first = msgs.length - 1;
    while (first > 0 && msgs[first - 1].role === 'tool') first--;
    const results = msgs.slice(first).map((m) => ({
      name: toolNameFor(msgs, m.tool_call_id, api),
      text: textOf(m.content) }));
    return { kind: 'tool', text: results.map((r) => r.text).join(' '),
             toolName: results[0].name, results };
  }
  if (api === 'anthropic' && Array.isArray(last.content)) {
    const res = last.content.filter((b) => b && b.type === 'tool_result');
    if (res.length) {
      const results = res.map((b) => ({
        name: toolNameFor(msgs, b.tool_use_id, api),
        text: textOf(b.content) }));
      return { kind: 'tool', text: results.map((r) => r.text).join(' '),
               toolName: results[0].name, results };
    }
  }
  return { kind: 'user', text: textOf(last.content) };
}

function toolNameFor(msgs, id, api) {
  for (const m of msgs) {
    if (api === 'openai') {
      for (const tc of m.tool_calls || [])
        if (tc.id === id) return tc.function && tc.function.name;
    } else if (Array.isArray(m.content)) {
      for (const b of m.content)
        if (b && b.type === 'tool_use' && b.id === id) return b.name;
    }
  }
  return 'tool';
}

// Text of the conversation's last user message that is not a tool
// result (Anthropic carries tool results in user messages).
function lastUserText(body) {
  const msgs = Array.isArray(body.messages) ? body.messages : [];
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i];
    if (!m || m.role !== 'user') continue;
    if (Array.isArray(m.content) &&
        m.content.some((b) => b && b.type === 'tool_result')) continue;
    return textOf(m.content);
  }
  return '';
}

// Scripted tool calls: each "use tool NAME {json}" in the last user
// message of a request with tools is one call (all in one reply); after
// a tool result, "always use tool ..." in the last user message asks
// again (a model that never stops calling tools).  The
// x-fake-tool-call header does the same for any text.  Returns a list
// of {name, args}, or null.
function scriptedCalls(req, body, turn) {
  if (!Array.isArray(body.tools) || !body.tools.length) return null;
  const hdr = req.headers['x-fake-tool-call'];
  if (hdr && turn.kind === 'user') {
    let args = {};
    try { args = JSON.parse(req.headers['x-fake-tool-args'] || '{}'); }
    catch (e) { args = {}; }
    return [{ name: hdr, args }];
  }
  let text = turn.kind === 'user' ? turn.text : null;
  if (turn.kind === 'tool') {
    const u = lastUserText(body);
    if (/always use tool /.test(u)) text = u;
  }
  if (text === null) return null;
  const calls = [];
  for (const seg of text.split(/use tool /).slice(1)) {
    const m = /^([A-Za-z0-9_.-]+)\s*(.*)$/s.exec(seg);
    if (!m) continue;
    let args = {};
    const rest = m[2].trim();
    if (rest) {
      const start = rest.indexOf('{');
      const end = rest.lastIndexOf('}');
      try { args = JSON.parse(rest.slice(start, end + 1)); }
      catch (e) { args = {}; }
    }
    calls.push({ name: m[1], args });
  }
  return calls.length ? calls : null;
}

// The id of scripted call i: a hash of its name and arguments (and of
// its position after the first), so it is stable.
function callId(prefix, call, i) {
  return prefix + crypto.createHash('sha256')
    .update(call.name + JSON.stringify(call.args) + (i ? `#${i}` : ''))
    .digest('hex').slice(0, 24);
}

function answerText(turn) {
  if (turn.kind === 'tool') {
    return turn.results.map((r) => `Tool ${r.name} returned: ${r.text}`)
      .join(' ');
  }
  return `Echo: ${turn.text}`;
}

// ------------------------------------------------------------ faults

// The fault asked for: header first, then a marker in the text.
function faultOf(req, text) {
  let f = req.headers['x-fake-fault'];
  if (!f) {
    const m = /\[fault:([A-Za-z0-9=]+)\]/.exec(text || '');
    if (m) f = m[1];
  }
  if (!f) return null;
  const st = /^(\d{3})(?:x(\d+))?$/.exec(f);
  if (st) return { kind: 'status', status: Number(st[1]),
                   times: st[2] ? Number(st[2]) : Infinity, name: f };
  const slow = /^slow(?:=(\d+))?$/.exec(f);
  if (slow) return { kind: 'slow', ms: slow[1] ? Number(slow[1]) : 200 };
  if (['hang', 'drop', 'malformed'].includes(f)) return { kind: f };
  return null;
}

// Should a status fault fire for this call?  "429x2" fails the first two
// calls carrying the same marker and text, then lets them through.
function statusFires(fault, route, text) {
  if (fault.times === Infinity) return true;
  const key = `${fault.name}|${route}|${text}`;
  const n = faultCounts.get(key) || 0;
  faultCounts.set(key, n + 1);
  return n < fault.times;
}

// ------------------------------------------------------------ replies

function commonHeaders(api, extra) {
  const h = Object.assign({}, extra);
  if (api === 'anthropic') {
    h['request-id'] = h['request-id'] || rid('req_');
    h['anthropic-organization-id'] = 'fake-org-0000';
    h['anthropic-ratelimit-requests-limit'] = '4000';
    h['anthropic-ratelimit-requests-remaining'] = '3999';
    h['anthropic-ratelimit-requests-reset'] = new Date(Date.now() + 1000)
      .toISOString().replace(/\.\d+Z$/, 'Z');
  } else {
    h['x-request-id'] = rid('req_');
    h['openai-processing-ms'] = '5';
    h['openai-version'] = '2020-10-01';
    h['x-ratelimit-limit-requests'] = '30000';
    h['x-ratelimit-remaining-requests'] = '29999';
    h['x-ratelimit-reset-requests'] = '2ms';
    h['x-ratelimit-limit-tokens'] = '150000000';
    h['x-ratelimit-remaining-tokens'] = '149999990';
    h['x-ratelimit-reset-tokens'] = '0s';
  }
  return h;
}

function sendJson(res, status, api, obj, extra) {
  const body = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, commonHeaders(api, Object.assign({
    'content-type': 'application/json',
    'content-length': body.length,
  }, extra)));
  res.end(body);
}

const ERRORS = {
  openai: {
    400: ['invalid_request_error', null, 'Invalid request.'],
    401: ['invalid_request_error', 'invalid_api_key',
          'Incorrect API key provided. You can find your API key at ' +
          'https://platform.openai.com/account/api-keys.'],
    404: ['invalid_request_error', 'model_not_found',
          'The model does not exist or you do not have access to it.'],
    429: ['requests', 'rate_limit_exceeded',
          'Rate limit reached for requests per min (RPM): Limit 3, Used 3, ' +
          'Requested 1. Please try again in 1s.'],
    500: ['server_error', null, 'The server had an error while processing ' +
          'your request. Sorry about that!'],
    503: ['server_error', null, 'The engine is currently overloaded, ' +
          'please try again later.'],
  },
  anthropic: {
    400: ['invalid_request_error', 'Invalid request.'],
    401: ['authentication_error', 'invalid x-api-key'],
    404: ['not_found_error', 'Not found'],
    429: ['rate_limit_error', 'Number of request tokens has exceeded your ' +
          'per-minute rate limit'],
    500: ['api_error', 'Internal server error'],
    529: ['overloaded_error', 'Overloaded'],
  },
};

function sendError(res, api, status, message) {
  const extra = {};
  if (status === 429) {
    extra['retry-after'] = '1';
    extra['retry-after-ms'] = String(RETRY_AFTER_MS);
  }
  if (api === 'anthropic') {
    const e = ERRORS.anthropic[status] || ERRORS.anthropic[500];
    extra['request-id'] = rid('req_');
    sendJson(res, status, api, {
      type: 'error',
      error: { type: e[0], message: message || e[1] },
      request_id: extra['request-id'],
    }, extra);
  } else {
    const e = ERRORS.openai[status] || ERRORS.openai[500];
    sendJson(res, status, api, {
      error: { message: message || e[2], type: e[0], param: null,
               code: e[1] },
    }, Object.assign({ 'content-type': 'application/json; charset=utf-8' },
                     extra));
  }
}

function sseHeaders(api) {
  return commonHeaders(api, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Write SSE events one by one; the fault decides pacing and breakage.
async function writeEvents(res, events, fault) {
  const gap = fault && fault.kind === 'slow' ? fault.ms : 0;
  for (let i = 0; i < events.length; i++) {
    if (res.destroyed) return;
    if (fault && fault.kind === 'drop' && i === Math.min(3, events.length - 1)) {
      res.socket.destroy();
      return;
    }
    res.write(events[i]);
    if (gap) await sleep(gap);
    else await new Promise((r) => setImmediate(r));
  }
  res.end();
}

// Send a whole JSON reply, honouring slow / drop / malformed.
async function sendReply(res, api, obj, fault, npieces) {
  if (fault && fault.kind === 'slow') await sleep(fault.ms * npieces);
  if (fault && fault.kind === 'malformed') {
    const bad = Buffer.from('{"id": "broken", "choices": [{"message": ');
    res.writeHead(200, commonHeaders(api, {
      'content-type': 'application/json', 'content-length': bad.length }));
    res.end(bad);
    return;
  }
  if (fault && fault.kind === 'drop') {
    const body = Buffer.from(JSON.stringify(obj));
    res.writeHead(200, commonHeaders(api, {
      'content-type': 'application/json', 'content-length': body.length }));
    res.write(body.subarray(0, body.length >> 1));
    setTimeout(() => res.socket && res.socket.destroy(), 20);
    return;
  }
  sendJson(res, 200, api, obj);
}

// ------------------------------------------------------ OpenAI routes

function openaiChat(req, res, body, fault) {
  const turn = lastTurn(body, 'openai');
  const calls = scriptedCalls(req, body, turn);
  const id = rid('chatcmpl-');
  const created = Math.floor(Date.now() / 1000);
  const model = body.model;
  const ptok = promptTokens(body);
  const max = body.max_completion_tokens || body.max_tokens;
  let parts = pieces(answerText(turn));
  let finish = 'stop';
  if (calls) finish = 'tool_calls';
  else if (Number.isInteger(max) && max > 0 && parts.length > max) {
    parts = parts.slice(0, max);
    finish = 'length';
  }
  const text = parts.join('');
  const tcs = (calls || []).map((c, i) => ({ id: callId('call_', c, i),
    name: c.name, args: JSON.stringify(c.args) }));
  const ctok = calls
    ? tcs.reduce((n, c) => n + tokens(c.args) + 5, 0) : parts.length;
  const usage = {
    prompt_tokens: ptok, completion_tokens: ctok,
    total_tokens: ptok + ctok,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0,
      accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
  if (!body.stream) {
    const message = { role: 'assistant', content: calls ? null : text,
                      refusal: null, annotations: [] };
    if (calls) {
      message.tool_calls = tcs.map((c) => ({ id: c.id, type: 'function',
        function: { name: c.name, arguments: c.args } }));
    }
    return sendReply(res, 'openai', {
      id, object: 'chat.completion', created, model,
      choices: [{ index: 0, message, logprobs: null,
                  finish_reason: finish }],
      usage, service_tier: 'default', system_fingerprint: 'fp_fake',
    }, fault, parts.length);
  }
  const withUsage = !!(body.stream_options &&
                       body.stream_options.include_usage);
  const chunk = (delta, fr, extra) => {
    const c = { id, object: 'chat.completion.chunk', created, model,
                service_tier: 'default', system_fingerprint: 'fp_fake',
                choices: [{ index: 0, delta, logprobs: null,
                            finish_reason: fr }] };
    if (withUsage) c.usage = null;
    return 'data: ' + JSON.stringify(Object.assign(c, extra)) + '\n\n';
  };
  const events = [];
  if (calls) {
    tcs.forEach((c, index) => {
      const first = { index, id: c.id, type: 'function',
                      function: { name: c.name, arguments: '' } };
      events.push(chunk(index === 0
        ? { role: 'assistant', content: null, tool_calls: [first],
            refusal: null }
        : { tool_calls: [first] }, null));
      const step = Math.max(1, Math.ceil(c.args.length / 3));
      for (let i = 0; i < c.args.length; i += step) {
        events.push(chunk({ tool_calls: [{ index,
          function: { arguments: c.args.slice(i, i + step) } }] }, null));
      }
    });
  } else {
    events.push(chunk({ role: 'assistant', content: '', refusal: null },
                      null));
    for (const p of parts) events.push(chunk({ content: p }, null));
  }
  events.push(chunk({}, finish));
  if (withUsage) {
    events.push('data: ' + JSON.stringify({ id, object:
      'chat.completion.chunk', created, model, service_tier: 'default',
      system_fingerprint: 'fp_fake', choices: [], usage }) + '\n\n');
  }
  events.push('data: [DONE]\n\n');
  if (fault && fault.kind === 'malformed')
    events.splice(2, 0, 'data: {"id": "broken", "choices": [{"delta": \n\n');
  res.writeHead(200, sseHeaders('openai'));
  return writeEvents(res, events, fault);
}

// Deterministic unit vector of dim floats for text.
function vector(text, dim) {
  let h = 2166136261 >>> 0;
  for (const b of Buffer.from(text)) h = Math.imul(h ^ b, 16777619) >>> 0;
  const v = new Float32Array(dim);
  let norm = 0;
  for (let i = 0; i < dim; i++) {
    h ^= h << 13; h >>>= 0; h ^= h >>> 17; h ^= h << 5; h >>>= 0;
    v[i] = (h / 4294967296) * 2 - 1;
    norm += v[i] * v[i];
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < dim; i++) v[i] /= norm;
  return v;
}

function openaiEmbeddings(req, res, body, fault) {
  let inputs = body.input;
  if (inputs === undefined || inputs === null || inputs === '')
    return sendError(res, 'openai', 400, "'input' is a required property");
  if (!Array.isArray(inputs) || (inputs.length && typeof inputs[0] ===
      'number'))
    inputs = [inputs];
  const dim = Number.isInteger(body.dimensions) && body.dimensions > 0
    ? body.dimensions : 8;
  const b64 = body.encoding_format === 'base64';
  let ntok = 0;
  const data = inputs.map((inp, index) => {
    const text = typeof inp === 'string' ? inp : JSON.stringify(inp);
    ntok += tokens(text);
    const v = vector(text, dim);
    const embedding = b64
      ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')
      : Array.from(v);
    return { object: 'embedding', index, embedding };
  });
  return sendReply(res, 'openai', {
    object: 'list', data, model: body.model,
    usage: { prompt_tokens: ntok, total_tokens: ntok },
  }, fault, 1);
}

const OPENAI_MODELS = [
  ['gpt-4o-mini', 1721172741, 'system'],
  ['gpt-4o', 1715367049, 'system'],
  ['text-embedding-3-small', 1705948997, 'system'],
];
const ANTHROPIC_MODELS = [
  ['claude-sonnet-4-5-20250929', 'Claude Sonnet 4.5', '2025-09-29T00:00:00Z'],
  ['claude-3-5-haiku-20241022', 'Claude Haiku 3.5', '2024-10-22T00:00:00Z'],
];

function models(res, api) {
  if (api === 'anthropic') {
    const data = ANTHROPIC_MODELS.map(([id, name, at]) => ({
      type: 'model', id, display_name: name, created_at: at }));
    return sendJson(res, 200, api, { data, has_more: false,
      first_id: data[0].id, last_id: data[data.length - 1].id });
  }
  return sendJson(res, 200, api, { object: 'list', data: OPENAI_MODELS.map(
    ([id, created, owned_by]) => ({ id, object: 'model', created,
                                    owned_by })) });
}

// --------------------------------------------------- Anthropic routes

function anthropicMessages(req, res, body, fault) {
  if (!Number.isInteger(body.max_tokens))
    return sendError(res, 'anthropic', 400, 'max_tokens: Field required');
  if (!Array.isArray(body.messages) || !body.messages.length)
    return sendError(res, 'anthropic', 400, 'messages: Field required');
  const turn = lastTurn(body, 'anthropic');
  const calls = scriptedCalls(req, body, turn);
  const id = rid('msg_');
  const model = body.model;
  const ptok = promptTokens(body);
  let parts = pieces(answerText(turn));
  let stop = 'end_turn';
  if (calls) stop = 'tool_use';
  else if (parts.length > body.max_tokens) {
    parts = parts.slice(0, body.max_tokens);
    stop = 'max_tokens';
  }
  const thinking = body.thinking && body.thinking.type === 'enabled'
    ? pieces(`Thinking about: ${turn.text}`) : null;
  const tus = (calls || []).map((c, i) => ({ id: callId('toolu_', c, i),
    name: c.name, input: c.args, args: JSON.stringify(c.args) }));
  const ctok = calls
    ? tus.reduce((n, c) => n + tokens(c.args) + 5, 0) : parts.length;
  const usage = { input_tokens: ptok, cache_creation_input_tokens: 0,
                  cache_read_input_tokens: 0, output_tokens: ctok };
  if (!body.stream) {
    const content = [];
    if (thinking)
      content.push({ type: 'thinking', thinking: thinking.join(''),
                     signature: 'fakesig' });
    if (calls) {
      for (const c of tus)
        content.push({ type: 'tool_use', id: c.id, name: c.name,
                       input: c.input });
    } else
      content.push({ type: 'text', text: parts.join('') });
    return sendReply(res, 'anthropic', {
      id, type: 'message', role: 'assistant', model, content,
      stop_reason: stop, stop_sequence: null,
      usage: Object.assign({ service_tier: 'standard' }, usage),
    }, fault, parts.length);
  }
  const ev = (name, data) =>
    `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  const events = [ev('message_start', { type: 'message_start', message: {
    id, type: 'message', role: 'assistant', model, content: [],
    stop_reason: null, stop_sequence: null,
    usage: Object.assign({}, usage, { output_tokens: 1 }) } })];
  let index = 0;
  if (thinking) {
    events.push(ev('content_block_start', { type: 'content_block_start',
      index, content_block: { type: 'thinking', thinking: '',
                              signature: '' } }));
    for (const p of thinking) {
      events.push(ev('content_block_delta', { type: 'content_block_delta',
        index, delta: { type: 'thinking_delta', thinking: p } }));
    }
    events.push(ev('content_block_delta', { type: 'content_block_delta',
      index, delta: { type: 'signature_delta', signature: 'fakesig' } }));
    events.push(ev('content_block_stop', { type: 'content_block_stop',
                                           index }));
    index++;
  }
  if (calls) {
    tus.forEach((c, k) => {
      if (k) {
        events.push(ev('content_block_stop', { type: 'content_block_stop',
                                               index }));
        index++;
      }
      events.push(ev('content_block_start', { type: 'content_block_start',
        index, content_block: { type: 'tool_use', id: c.id, name: c.name,
                                input: {} } }));
      events.push(ev('content_block_delta', { type: 'content_block_delta',
        index, delta: { type: 'input_json_delta', partial_json: '' } }));
      const step = Math.max(1, Math.ceil(c.args.length / 3));
      for (let i = 0; i < c.args.length; i += step) {
        events.push(ev('content_block_delta', { type: 'content_block_delta',
          index, delta: { type: 'input_json_delta',
                          partial_json: c.args.slice(i, i + step) } }));
      }
    });
  } else {
    events.push(ev('content_block_start', { type: 'content_block_start',
      index, content_block: { type: 'text', text: '' } }));
    events.push(ev('ping', { type: 'ping' }));
    for (const p of parts) {
      events.push(ev('content_block_delta', { type: 'content_block_delta',
        index, delta: { type: 'text_delta', text: p } }));
    }
  }
  events.push(ev('content_block_stop', { type: 'content_block_stop', index }));
  events.push(ev('message_delta', { type: 'message_delta',
    delta: { stop_reason: stop, stop_sequence: null },
    usage: { output_tokens: ctok } }));
  events.push(ev('message_stop', { type: 'message_stop' }));
  if (fault && fault.kind === 'malformed')
    events.splice(2, 0, 'event: content_block_delta\ndata: {"type": \n\n');
  res.writeHead(200, sseHeaders('anthropic'));
  return writeEvents(res, events, fault);
}

// ------------------------------------------------------------- replay

const cassettes = new Map();

// Load a VCR cassette through python3-yaml (node has no YAML parser);
// binary bodies come back as {"__binary__": base64}.
function loadCassette(file) {
  if (cassettes.has(file)) return cassettes.get(file);
  const py = 'import sys,json,yaml,base64\n' +
    'def fix(o):\n' +
    ' if isinstance(o,bytes): return {"__binary__":base64.b64encode(o).decode()}\n' +
    ' if isinstance(o,dict): return {str(k):fix(v) for k,v in o.items()}\n' +
    ' if isinstance(o,list): return [fix(v) for v in o]\n' +
    ' return o\n' +
    'print(json.dumps(fix(yaml.safe_load(open(sys.argv[1],"rb")))))\n';
  const out = execFileSync('python3', ['-c', py, file],
                           { maxBuffer: 64 << 20 });
  const c = JSON.parse(out.toString());
  cassettes.set(file, c);
  return c;
}

function pathOf(uri) {
  try { return new URL(uri).pathname; } catch (e) { return uri; }
}

// Recorded path matches the request path: equal, or one ends with the
// other (Groq records /openai/v1/..., OpenRouter /api/v1/...).
function samePath(recorded, wanted) {
  return recorded === wanted || recorded.endsWith(wanted) ||
         wanted.endsWith(recorded);
}

function sameJson(a, b) {
  const norm = (v) => JSON.stringify(v, (k, x) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.keys(x).sort().map((kk) => [kk, x[kk]]))
      : x);
  return norm(a) === norm(b);
}

function recordedBody(reqRec) {
  if (reqRec.parsed_body !== undefined) return reqRec.parsed_body;
  if (typeof reqRec.body === 'string') {
    try { return JSON.parse(reqRec.body); } catch (e) { return reqRec.body; }
  }
  return null;
}

// Pick an interaction of the given cassettes: same method and path, the
// same JSON body if one was recorded, else the next one in order.
function pickInteraction(files, method, p, body) {
  const cands = [];
  for (const f of files) {
    const c = loadCassette(f);
    for (const it of c.interactions || []) {
      if (it.request.method === method && samePath(pathOf(it.request.uri), p))
        cands.push({ f, it });
    }
  }
  if (!cands.length) return null;
  const exact = cands.find((c) => sameJson(recordedBody(c.it.request), body));
  if (exact) return exact.it;
  const key = files.join(',') + '|' + p;
  const n = replayCounts.get(key) || 0;
  replayCounts.set(key, n + 1);
  return cands[n % cands.length].it;
}

const HOP_HEADERS = new Set(['content-length', 'transfer-encoding',
  'content-encoding', 'connection', 'keep-alive', 'date', 'server']);

async function replay(res, it) {
  const rsp = it.response;
  let body;
  const b = rsp.body;
  if (b && b.string !== undefined) {
    body = typeof b.string === 'string' ? Buffer.from(b.string)
      : Buffer.from(b.string.__binary__, 'base64');
  } else if (rsp.parsed_body !== undefined) {
    body = Buffer.from(JSON.stringify(rsp.parsed_body));
  } else {
    body = Buffer.alloc(0);
  }
  const headers = {};
  for (const [k, v] of Object.entries(rsp.headers || {})) {
    if (!HOP_HEADERS.has(k.toLowerCase())) headers[k] = v;
  }
  res.writeHead(rsp.status.code, headers);
  // streams go out in small pieces so clients see split events
  for (let i = 0; i < body.length; i += 37) {
    if (res.destroyed) return;
    res.write(body.subarray(i, i + 37));
    await new Promise((r) => setImmediate(r));
  }
  res.end();
}

function replayFiles(req) {
  const one = req.headers['x-fake-replay'];
  if (one) return [path.resolve(opts.fixtures, one)];
  if (!opts.replay) return null;
  return fs.readdirSync(opts.replay).filter((f) => f.endsWith('.yaml'))
    .sort().map((f) => path.join(opts.replay, f));
}

// ------------------------------------------------------------ routing

function apiOf(req, p) {
  if (p === '/v1/messages') return 'anthropic';
  if (req.headers['x-api-key'] || req.headers['anthropic-version'])
    return 'anthropic';
  return 'openai';
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let n = 0;
    req.on('data', (d) => {
      n += d.length;
      if (n > 16 << 20) reject(new Error('body too large'));
      else parts.push(d);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://fake');
  const p = url.pathname;
  const raw = await readBody(req);

  if (p === '/_fake/stats' && req.method === 'GET')
    return sendJson(res, 200, 'fake', stats);
  if (p === '/_fake/reset' && req.method === 'POST') {
    stats = { calls: 0, by_path: {} };
    faultCounts = new Map();
    replayCounts = new Map();
    lastRequest = null;
    return sendJson(res, 200, 'fake', { ok: true });
  }
  if (p === '/_fake/last' && req.method === 'GET')
    return sendJson(res, 200, 'fake', lastRequest || {});

  stats.calls++;
  stats.by_path[p] = (stats.by_path[p] || 0) + 1;
  const api = apiOf(req, p);
  let body = {};
  if (raw.length) {
    try { body = JSON.parse(raw.toString()); }
    catch (e) {
      return sendError(res, api, 400, api === 'anthropic'
        ? 'There was an error parsing the body of your request.'
        : 'We could not parse the JSON body of your request.');
    }
  }
  lastRequest = { method: req.method, path: req.url, headers: req.headers,
                  body };

  const files = replayFiles(req);
  if (files) {
    let it;
    try { it = pickInteraction(files, req.method, p, body); }
    catch (e) {
      return sendError(res, api, 500, `replay failed: ${e.message}`);
    }
    if (!it) return sendError(res, api, 404,
                              `no recorded interaction for ${req.method} ${p}`);
    return replay(res, it);
  }

  const text = p === '/v1/embeddings'
    ? textOf(Array.isArray(body.input) ? body.input.join(' ') : body.input)
    : lastTurn(body, api).text;
  const fault = faultOf(req, text);
  if (fault && fault.kind === 'hang') return; // the socket stays open
  if (fault && fault.kind === 'status' && statusFires(fault, p, text)) {
    let st = fault.status;
    if (st === 529 && api === 'openai') st = 503;
    return sendError(res, api, st);
  }
  if (typeof body.model === 'string' && body.model.startsWith('nonexistent'))
    return sendError(res, api, 404, api === 'anthropic'
      ? `model: ${body.model}`
      : `The model \`${body.model}\` does not exist or you do not have ` +
        'access to it.');

  if (req.method === 'POST' && p === '/v1/chat/completions') {
    if (!Array.isArray(body.messages))
      return sendError(res, 'openai', 400, "'messages' is a required " +
                       'property');
    return openaiChat(req, res, body, fault);
  }
  if (req.method === 'POST' && p === '/v1/embeddings')
    return openaiEmbeddings(req, res, body, fault);
  if (req.method === 'POST' && p === '/v1/messages')
    return anthropicMessages(req, res, body, fault);
  if (req.method === 'GET' && p === '/v1/models') return models(res, api);
  if (api === 'anthropic')
    return sendError(res, api, 404, 'Not found');
  return sendError(res, api, 404, `Invalid URL (${req.method} ${p})`);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    if (!res.headersSent) sendError(res, 'openai', 500, String(e.message));
    else res.destroy();
  });
});
server.keepAliveTimeout = 30000;
server.on('clientError', (e, socket) => socket.destroy());
server.listen(opts.port, opts.host, () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

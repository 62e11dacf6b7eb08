/*
 * llm_tools - the pure parts of the MCP tool loop and of assembling
 * chat replies: no I/O, no engine, so that unit tests can pin them.
 *
 * MCP tools: a chat request names them with Responses-API-shaped
 * entries {"type":"mcp","server_label":"S","allowed_tools":[...]} in
 * "tools".  llm_tools_mcp_query turns those into the body of the mcp
 * service's "tools" operation; llm_tools_merge replaces them with
 * OpenAI function tools built from its answer and records which
 * function name stands for which MCP tool; the loop then sorts the
 * model's tool calls (MCP, the client's own, unknown), appends the
 * assistant turn and one "tool" message per call, and goes on.
 *
 * Replies: a stream's chunks are folded into the chat.completion they
 * stand for (llm_acc_*), and a chat.completion unfolds into chunks
 * again (llm_completion_chunks) to replay a cached answer.
 *
 * Ownership: functions returning json_t * return a new reference;
 * char * results are omni_malloc'ed for the caller to omni_free.
 */
#ifndef LLM_TOOLS_H
#define LLM_TOOLS_H

#include <jansson.h>
#include <stdbool.h>

#include "omni_err.h"

/* OpenAI's limit on a function name. */
#define LLM_TOOL_NAME_MAX 64

/* ---- replies ---- */

/* An empty chat.completion to fold chunks into. */
json_t *llm_acc_new(void);
/* Fold one chat.completion.chunk into acc: the id, created, model and
 * usage it carries, choice 0's content, reasoning_content and refusal
 * appended, tool call fragments joined by index, finish_reason. */
void llm_acc_add(json_t *acc, json_t *chunk);
/* The chunks replaying completion (choice 0): a role chunk, a content
 * chunk (and one for reasoning_content and tool_calls when present), a
 * finish chunk, then a usage chunk (choices []) when include_usage and
 * the completion has usage.  The completion's "omni" object, if any,
 * is not part of them. */
json_t *llm_completion_chunks(json_t *completion, bool include_usage);
/* Add usage (prompt_tokens, completion_tokens, total_tokens) into *sum
 * (created on first use).  NULL or non-object usage adds nothing. */
void llm_usage_add(json_t **sum, json_t *usage);
/* Text of an OpenAI content value: a string, or the "text" of its
 * parts joined with sep.  "" for anything else. */
char *llm_content_text(json_t *content, const char *sep);

/* ---- MCP tool definitions ---- */

/* True when tools (a request's "tools") has a {"type":"mcp"} entry. */
bool llm_tools_has_mcp(json_t *tools);
/* The mcp "tools" request body for the mcp entries of tools:
 * {"servers":[labels]} plus "allowed_tools" (the union) when every
 * entry restricts its tools.  BAD_REQUEST naming the entry when one is
 * malformed (no server_label, allowed_tools not a list of strings nor
 * {"tool_names":[...]}). */
enum omni_err llm_tools_mcp_query(json_t *tools, json_t **query,
                                  char err[OMNI_ERR_LEN]);
/* A function name OpenAI accepts for MCP tool name: characters other
 * than letters, digits, '_' and '-' become '_'; a name over 64 bytes
 * keeps 55 and gets '_' and 8 hex digits of its hash. */
char *llm_tools_fname(const char *mcp_name);
/* Replace the mcp entries of tools with function tools built from
 * listed (the mcp "tools" answer: {"tools":[{"name","description",
 * "inputSchema","server"}]}), keeping the client's own tools first.
 * Each entry keeps the tools of its server_label that its
 * allowed_tools name (by tool name or server__tool), all of them when
 * it has none.  *map gets {function name: MCP name}.  NOT_FOUND naming
 * the server when an entry matches no tool; BAD_REQUEST when listed is
 * malformed. */
enum omni_err llm_tools_merge(json_t *tools, json_t *listed, json_t **out,
                              json_t **map, char err[OMNI_ERR_LEN]);

/* ---- the loop ---- */

enum llm_tc_kind {
    LLM_TC_MCP,     /* a function standing for an MCP tool */
    LLM_TC_CLIENT,  /* one of the client's own tools */
    LLM_TC_UNKNOWN, /* neither: the model made the name up */
};

/* What a tool call of the model names, given the merged tools' map and
 * the client's original tools. */
enum llm_tc_kind llm_tools_kind(json_t *tool_call, json_t *map,
                                json_t *client_tools);
/* The tool call's function name ("" if absent). */
const char *llm_tools_call_name(json_t *tool_call);
/* The tool call's arguments, parsed (an empty string is {}); NULL with
 * err set when they are not a JSON object. */
json_t *llm_tools_call_args(json_t *tool_call, char err[OMNI_ERR_LEN]);
/* The assistant message that asked for tool_calls, to append to the
 * conversation: role, content (null when empty) and tool_calls. */
json_t *llm_tools_assistant(json_t *message);
/* A "tool" message answering call id with text. */
json_t *llm_tools_result_msg(const char *id, const char *text);
/* The text fed back to the model for an MCP CallToolResult: its text
 * content (and the text of embedded resources) joined with newlines,
 * other content as "[TYPE content]", prefixed "error: " when isError. */
char *llm_tools_result_text(json_t *result);
/* tool_choice for the turns after the first: "required" and a named
 * function would force a tool call on every turn, so they become
 * "auto"; anything else is kept.  Returns a new reference or NULL
 * (no tool_choice). */
json_t *llm_tools_next_choice(json_t *tool_choice);

#endif
